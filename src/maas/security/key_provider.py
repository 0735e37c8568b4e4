"""Where key-encryption keys (KEKs) come from: a key file, an environment variable, later a KMS.

A key ring maps key ids to 32-byte keys and names the current one, which seals new blobs; the others stay
readable until a rotation has re-wrapped every data key (then they are retired). Key files are JSON
(`{"current": id, "keys": {id: base64}}`) or a bare base64 key; the environment variable takes the same.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from maas.errors import FailedPrecondition, InvalidArgument

log = logging.getLogger(__name__)


def key_id(key: bytes) -> str:
    """A public name for a key (16 hex characters), so a blob says which key sealed it."""
    return hashlib.sha256(b"maas key id\0" + key).hexdigest()[:16]


@dataclass
class KeyRing:
    current: str
    keys: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def single(cls, key: bytes) -> KeyRing:
        kid = key_id(key)
        return cls(kid, {kid: key})

    @classmethod
    def parse(cls, text: str, where: str) -> KeyRing:
        text = text.strip()
        try:
            if text.startswith("{"):
                doc = json.loads(text)
                keys = {str(k): _decode_key(v, where) for k, v in dict(doc["keys"]).items()}
                ring = cls(str(doc["current"]), keys)
                if ring.current not in keys or any(key_id(v) != k for k, v in keys.items()):
                    raise InvalidArgument(f"the key ring in {where} is inconsistent")
                return ring
        except (ValueError, KeyError, TypeError):
            raise InvalidArgument(f"{where} is not a maas key ring") from None
        return cls.single(_decode_key(text, where))

    def dumps(self) -> str:
        keys = {k: base64.b64encode(v).decode("ascii") for k, v in self.keys.items()}
        return json.dumps({"current": self.current, "keys": keys}, indent=1) + "\n"


def _decode_key(value: object, where: str) -> bytes:
    try:
        key = base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument(f"the master key in {where} is not base64") from None
    if len(key) != 32:
        raise InvalidArgument(f"the master key in {where} must be 32 bytes (AES-256), not {len(key)}")
    return key


class KeyProvider(Protocol):
    """Source of KEKs. `lookup` raises FailedPrecondition for a key it does not hold."""

    @property
    def description(self) -> str: ...
    def current(self) -> tuple[str, bytes]: ...
    def lookup(self, kid: str) -> bytes: ...
    def ids(self) -> list[str]: ...


class RotatableKeyProvider(KeyProvider, Protocol):
    def begin_rotation(self) -> str: ...
    def retire_old_keys(self) -> list[str]: ...


class _RingProvider:
    def __init__(self, ring: KeyRing, description: str) -> None:
        self._ring = ring
        self._description = description

    @property
    def description(self) -> str:
        return self._description

    def current(self) -> tuple[str, bytes]:
        return self._ring.current, self._ring.keys[self._ring.current]

    def lookup(self, kid: str) -> bytes:
        key = self._ring.keys.get(kid)
        if key is None:
            raise FailedPrecondition(
                f"master key {kid} is not in {self._description} (wrong or missing MAAS_MASTER_KEY_FILE / "
                "MAAS_MASTER_KEY)"
            )
        return key

    def ids(self) -> list[str]:
        return sorted(self._ring.keys)


class EnvKeyProvider(_RingProvider):
    """The key ring given in MAAS_MASTER_KEY; it cannot be rotated from here (the caller owns the variable)."""

    def __init__(self, value: str) -> None:
        super().__init__(KeyRing.parse(value, "MAAS_MASTER_KEY"), "MAAS_MASTER_KEY")


class FileKeyProvider(_RingProvider):
    """A key ring in a file (mode 0600), read on first use and again whenever the file changes (another
    process rotated it). A missing or unreadable file fails each use with a message naming it, so a server
    still starts and reports every encrypted version unavailable, instead of inventing a new key."""

    def __init__(self, path: Path) -> None:
        super().__init__(KeyRing("", {}), str(path))
        self.path = path
        self._stamp: tuple[int, int] | None = None

    def _load(self) -> KeyRing:
        try:
            st = self.path.stat()
            if (st.st_mtime_ns, st.st_ino) != self._stamp:
                text = self.path.read_text()
                if os.name == "posix" and st.st_mode & 0o077:
                    log.warning("master key file %s is readable by other users; chmod 600 it", self.path)
                self._ring = KeyRing.parse(text, str(self.path))
                self._stamp = (st.st_mtime_ns, st.st_ino)
        except FileNotFoundError:
            raise FailedPrecondition(f"the master key file {self.path} does not exist") from None
        except OSError as exc:
            raise FailedPrecondition(f"cannot read the master key file {self.path}: {exc.strerror}") from None
        return self._ring

    def current(self) -> tuple[str, bytes]:
        self._load()
        return super().current()

    def lookup(self, kid: str) -> bytes:
        if kid not in self._ring.keys:
            self._load()
        return super().lookup(kid)

    def ids(self) -> list[str]:
        self._load()
        return super().ids()

    def begin_rotation(self) -> str:
        """Add a new key and make it current (the old ones stay until every data key is re-wrapped)."""
        key = AESGCM.generate_key(256)
        kid = key_id(key)
        ring = KeyRing(kid, {**self._load().keys, kid: key})
        _write_private(self.path, ring.dumps(), replace=True)
        self._load()
        return kid

    def retire_old_keys(self) -> list[str]:
        ring = self._load()
        old = [k for k in ring.keys if k != ring.current]
        if old:
            _write_private(self.path, KeyRing(ring.current, {ring.current: ring.keys[ring.current]}).dumps(),
                           replace=True)
            self._load()
        return old


def create_key_file(path: Path) -> bool:
    """Write a new random key ring at `path` unless one is there; True if this call created it.

    Creation is exclusive (a hard link of a finished temp file), so processes opening a new home at once
    all end up with the same key.
    """
    if path.exists():
        return False
    ring = KeyRing.single(AESGCM.generate_key(256))
    return _write_private(path, ring.dumps(), replace=False)


def _write_private(path: Path, text: str, *, replace: bool) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
            created = True
        else:
            try:
                os.link(tmp, path)
                created = True
            except FileExistsError:
                created = False
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return created
