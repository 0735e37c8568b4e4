"""Encryption at rest for a home: whether it is on, where the keys are, and the enable / rotate / status verbs.

A new home is encrypted from its first blob; a home created before encryption existed stays plaintext until
`enable`. The decision is recorded in `$MAAS_HOME/encryption.json` so every later open agrees. Enable and
rotate replace one blob at a time atomically, so a crash leaves each blob either old or new (both readable)
and running the command again resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from maas.config import Settings
from maas.errors import FailedPrecondition
from maas.registry.blob_encrypted import EncryptedBlobStore
from maas.registry.blobs import BlobStore, open_blob_store
from maas.security.key_provider import EnvKeyProvider, FileKeyProvider, KeyProvider, create_key_file

log = logging.getLogger(__name__)

STATE_FILE = "encryption.json"
Progress = Callable[[int, int], None]


def state_path(settings: Settings) -> Path:
    return settings.home / STATE_FILE


def _default_key_file(settings: Settings) -> bool:
    return settings.master_key_file == settings.home / "keys" / "master.key"


def key_provider(settings: Settings, *, create: bool) -> KeyProvider:
    """The env provider when MAAS_MASTER_KEY is set, else the key file.

    `create` (a home being encrypted for the first time) generates the home's default key file if absent;
    otherwise a missing key is an error on use, never a silently new key that could not open the old blobs.
    """
    if settings.master_key:
        return EnvKeyProvider(settings.master_key)
    path = settings.master_key_file
    assert path is not None  # Settings fills the default
    if create and _default_key_file(settings) and create_key_file(path):
        log.info("generated a new master key in %s (keep a copy: without it the models cannot be read)", path)
    return FileKeyProvider(path)


def _read_state(settings: Settings) -> bool | None:
    try:
        return bool(json.loads(state_path(settings).read_text())["encrypted"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        raise FailedPrecondition(f"{state_path(settings)} is corrupt; it should say {{\"encrypted\": true}}") from None


def _write_state(settings: Settings, encrypted: bool, *, replace: bool) -> None:
    path = state_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    tmp.write_text(json.dumps({"encrypted": encrypted}) + "\n")
    try:
        if replace:
            os.replace(tmp, path)
        else:
            with contextlib.suppress(FileExistsError):  # exclusive: concurrent openers keep the first decision
                os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def open_artifacts(settings: Settings) -> BlobStore:
    """The blob store stack for these settings: the store named by URL, sealed when the home is encrypted.

    A home seen for the first time is encrypted unless it already holds blobs (made before encryption
    existed); its key file is written before the decision, so no process can find one without the other.
    """
    inner = open_blob_store(settings.artifacts_url, settings.home / "cache")
    state = _read_state(settings)
    if state is None:
        blobs = iter(inner.iter_blobs())
        legacy = next(blobs, None) is not None
        getattr(blobs, "close", lambda: None)()
        if not legacy:
            key_provider(settings, create=True)
        _write_state(settings, not legacy, replace=False)
        state = bool(_read_state(settings))
        if not state:
            log.warning("this home's artifacts are not encrypted; run `maas encryption enable`")
    if not state:
        return inner
    return EncryptedBlobStore(inner, key_provider(settings, create=False))


# --- the verbs ---------------------------------------------------------------------------------------------
@dataclass
class EncryptionStatus:
    encrypted: bool
    key_source: str
    current_key: str | None
    keys: list[str]
    blobs: int
    sealed: int
    plaintext: int
    by_key: dict[str, int] = field(default_factory=dict)

    @property
    def rotation_in_progress(self) -> bool:
        return len(self.keys) > 1

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rotation_in_progress": self.rotation_in_progress}


def status(settings: Settings, store: BlobStore) -> EncryptionStatus:
    if not isinstance(store, EncryptedBlobStore):
        count = sum(1 for _ in store.iter_blobs())
        source = "MAAS_MASTER_KEY" if settings.master_key else str(settings.master_key_file)
        return EncryptionStatus(False, source, None, [], count, 0, count)
    by_key: dict[str, int] = {}
    plain = 0
    for info in store.iter_blobs():
        kid = store.key_id_of(info.sha256)
        if kid is None:
            plain += 1
        else:
            by_key[kid] = by_key.get(kid, 0) + 1
    total = plain + sum(by_key.values())
    return EncryptionStatus(
        True, store.keys.description, store.keys.current()[0], store.keys.ids(), total, total - plain, plain,
        by_key,
    )


def enable(settings: Settings, store: BlobStore, progress: Progress | None = None) -> tuple[EncryptedBlobStore, int]:
    """Turn encryption on and seal every plaintext blob; returns the encrypted store and how many it sealed."""
    if isinstance(store, EncryptedBlobStore):
        encrypted = store
    else:
        encrypted = EncryptedBlobStore(store, key_provider(settings, create=True))
    _write_state(settings, True, replace=True)  # from now on new blobs are sealed, before the old ones are
    blobs = [b.sha256 for b in encrypted.iter_blobs()]
    sealed = 0
    for i, sha in enumerate(blobs):
        if encrypted.seal_existing(sha):
            sealed += 1
        if progress:
            progress(i + 1, len(blobs))
    return encrypted, sealed


def rotate(store: BlobStore, progress: Progress | None = None) -> tuple[str, int, list[str]]:
    """New master key; re-wrap every data key under it; retire the old keys. Resumes an unfinished rotation.

    Returns (new key id, data keys re-wrapped, retired key ids).
    """
    if not isinstance(store, EncryptedBlobStore):
        raise FailedPrecondition("encryption is off in this home; run `maas encryption enable` first")
    keys = store.keys
    if not isinstance(keys, FileKeyProvider):
        raise FailedPrecondition(
            f"the master key comes from {keys.description}, which maas cannot change; rotate it there "
            "(or use MAAS_MASTER_KEY_FILE)"
        )
    if len(keys.ids()) == 1:
        keys.begin_rotation()
    new_id = keys.current()[0]
    done, passes = 0, 0
    while True:
        # Repeat until a pass finds nothing to re-wrap: a writer that picked its key just before the
        # rotation began may have sealed a blob under the old key while the first pass ran.
        blobs = [b.sha256 for b in store.iter_blobs()]
        this_pass = 0
        for i, sha in enumerate(blobs):
            if store.rewrap(sha):
                this_pass += 1
            if progress and passes == 0:
                progress(i + 1, len(blobs))
        done += this_pass
        passes += 1
        if this_pass == 0:
            return new_id, done, keys.retire_old_keys()
        if passes >= 3:  # still busy: keep the old keys (status shows the rotation unfinished); rerun later
            log.warning("blobs keep arriving under an old master key; the rotation stays unfinished")
            return new_id, done, []
