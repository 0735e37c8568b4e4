"""Resumable uploads staged in the artifact store: each appended piece is one content-addressed blob (sealed
like every artifact in an encrypted home), the upload's record lists them in order.

Records live beside the home's other state as `$MAAS_HOME/uploads/<id>.json` (sealed when the home is
encrypted), written to a temp name and renamed, so a crash leaves the old record or the new one. A piece is
stored before the record names it: a crash in between leaves an unreferenced blob that `gc` removes, and the
offset a client reads is always backed by stored bytes. One appender at a time per upload: an exclusive
`flock` on the upload's lock file, which also keeps apart two server processes sharing the home.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from maas.errors import FailedPrecondition, InvalidArgument, NotFound, PayloadTooLarge
from maas.registry.blobs import BlobStore, check_digest
from maas.registry.sealed_records import RecordSealer

_HEX = frozenset("0123456789abcdef")


class UploadGone(NotFound):
    """The upload existed but expired (HTTP 410 in tus)."""


class OffsetConflict(FailedPrecondition):
    """The client's offset is not where the upload stands (409 in tus)."""


class UploadBusy(FailedPrecondition):
    """Another request is appending to (or importing) this upload right now (423 in tus)."""


def check_upload_id(upload_id: str) -> str:
    """Ids are 32 hex digits; anything else (a path trick, a guess) is simply not an upload."""
    if not isinstance(upload_id, str) or len(upload_id) != 32 or not set(upload_id) <= _HEX:
        raise NotFound("upload not found")
    return upload_id


@dataclass(frozen=True)
class Upload:
    id: str
    length: int
    metadata: dict[str, str] = field(default_factory=dict)
    pieces: tuple[tuple[str, int], ...] = ()  # (sha256 of the plaintext, size) in upload order
    created_by: str = ""
    created_at: float = 0.0
    touched_at: float = 0.0  # creation or the last piece: expiry counts from here
    expires_at: float = 0.0  # touched_at + the store's expiry (the setting in force when read)

    @property
    def offset(self) -> int:
        return sum(size for _, size in self.pieces)

    @property
    def complete(self) -> bool:
        return self.offset == self.length

    def to_record(self) -> dict[str, Any]:
        d = asdict(self)
        d["pieces"] = [list(p) for p in self.pieces]
        d.pop("expires_at")  # derived on every read from touched_at and the expiry in force
        return d

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> Upload:
        return cls(id=d["id"], length=int(d["length"]), metadata=dict(d.get("metadata") or {}),
                   pieces=tuple((str(s), int(n)) for s, n in d.get("pieces") or ()),
                   created_by=str(d.get("created_by", "")), created_at=float(d.get("created_at", 0.0)),
                   touched_at=float(d.get("touched_at", 0.0)))


class _Capped:
    """A file-like view of body chunks that raises once more than `limit` bytes arrive."""

    def __init__(self, chunks: Iterable[bytes], limit: int) -> None:
        self._it = iter(chunks)
        self._left = limit

    def read(self, _size: int = -1) -> bytes:
        for chunk in self._it:
            if not chunk:
                continue
            self._left -= len(chunk)
            if self._left < 0:
                raise PayloadTooLarge("the body runs past the upload's declared Upload-Length")
            return chunk
        return b""


class UploadStore:
    """Create, append to, read back and forget resumable uploads."""

    def __init__(self, root: Path, blobs: BlobStore, sealer: RecordSealer, expiry_s: float) -> None:
        self.root = root
        self.blobs = blobs
        self.sealer = sealer
        self.expiry_s = expiry_s

    # --- records -----------------------------------------------------------------------------------------
    def _record(self, upload_id: str) -> Path:
        return self.root / f"{check_upload_id(upload_id)}.json"

    def _save(self, up: Upload) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        final = self._record(up.id)
        tmp = final.with_name(f".{up.id}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(self.sealer.seal(up.to_record()), f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)

    def _load(self, upload_id: str) -> Upload | None:
        try:
            with open(self._record(upload_id), encoding="utf-8") as f:
                stored = json.load(f)
        except FileNotFoundError:
            return None
        record = self.sealer.open(stored)
        if record is None:
            return None
        up = Upload.from_record(record)
        return replace(up, expires_at=up.touched_at + self.expiry_s)

    def _all(self) -> Iterator[Upload]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob("*.json")):
            try:
                up = self._load(path.stem)
            except (NotFound, ValueError, KeyError, OSError):
                continue  # not one of ours, or half-readable: left alone, never fatal to gc
            if up is not None:
                yield up

    # --- the protocol's verbs ----------------------------------------------------------------------------
    def create(self, length: int, metadata: dict[str, str], created_by: str = "") -> Upload:
        if length < 0:
            raise InvalidArgument("Upload-Length must be a non-negative integer")
        now = time.time()
        up = Upload(uuid.uuid4().hex, length, dict(metadata), (), created_by, now, now, now + self.expiry_s)
        self._save(up)
        return up

    def get(self, upload_id: str, created_by: str | None = None) -> Upload:
        """The upload, if it exists, has not expired and (when `created_by` is given) belongs to that caller."""
        up = self._load(upload_id)
        if up is None or (created_by is not None and up.created_by != created_by):
            raise NotFound("upload not found")  # another caller's upload is not even acknowledged
        if up.expires_at <= time.time():
            raise UploadGone("the upload expired; start a new one")
        return up

    def append(self, upload_id: str, offset: int, body: Iterable[bytes], created_by: str | None = None) -> Upload:
        """Store `body` as the upload's next piece if `offset` is where it stands. A body cut short (a broken
        connection) is kept as far as it came, so the client resumes from there."""
        with self.locked(upload_id):
            up = self.get(upload_id, created_by)
            if offset != up.offset:
                raise OffsetConflict(f"Upload-Offset {offset} does not match the upload's offset {up.offset}")
            sha, size = self.blobs.put_stream(_Capped(body, up.length - up.offset))  # type: ignore[arg-type]
            if size:
                up = replace(up, pieces=(*up.pieces, (sha, size)))
            now = time.time()
            up = replace(up, touched_at=now, expires_at=now + self.expiry_s)
            self._save(up)
            return up

    def delete(self, upload_id: str, created_by: str | None = None) -> None:
        """Forget the upload; its pieces are unreferenced from now on and go at the next `gc` (a piece may
        share its blob with a stored version, so it is never deleted here directly)."""
        with self.locked(upload_id):
            self.get(upload_id, created_by)
            self._record(upload_id).unlink(missing_ok=True)
            self._lock_file(upload_id).unlink(missing_ok=True)

    def discard(self, upload_id: str) -> None:
        """Forget a completed upload once its bytes were imported or handed to a job (caller holds the lock)."""
        self._record(upload_id).unlink(missing_ok=True)

    def read(self, up: Upload) -> Iterator[bytes]:
        """The upload's bytes in order, each piece verified against its digest as it is read."""
        from maas.registry.blob_encrypted import EncryptedBlobStore

        for sha, _ in up.pieces:
            check_digest(sha)
            if isinstance(self.blobs, EncryptedBlobStore):
                yield from self.blobs.iter_plaintext(sha)
            else:
                with open(self.blobs.open_path(sha), "rb") as f:
                    yield from iter(lambda f=f: f.read(1024 * 1024), b"")  # type: ignore[misc]

    def assemble(self, up: Upload) -> str:
        """The whole upload as one blob (for a background job's input): its only piece as it is, or the
        pieces joined into a new blob, sealed like any other."""
        if len(up.pieces) == 1:
            return up.pieces[0][0]
        return self.blobs.put_stream(_Capped(self.read(up), up.length))[0]  # type: ignore[arg-type]

    def write_to(self, up: Upload, out: IO[bytes]) -> None:
        for chunk in self.read(up):
            out.write(chunk)

    # --- locking -------------------------------------------------------------------------------------------
    def _lock_file(self, upload_id: str) -> Path:
        return self.root / f"{check_upload_id(upload_id)}.lock"

    def locked(self, upload_id: str, wait_s: float = 1.0) -> _Lock:
        """An exclusive hold on the upload; UploadBusy when another request keeps it past `wait_s` (a brief
        hold, such as an empty piece, is waited out rather than failed)."""
        return _Lock(self._lock_file(upload_id), wait_s)

    # --- housekeeping --------------------------------------------------------------------------------------
    def expire(self, now: float | None = None) -> int:
        """Forget uploads past their expiry (their pieces become unreferenced); returns how many."""
        now = time.time() if now is None else now
        gone = 0
        for up in list(self._all()):
            if up.expires_at > now:
                continue
            try:
                with self.locked(up.id, wait_s=0):
                    self._record(up.id).unlink(missing_ok=True)
                    self._lock_file(up.id).unlink(missing_ok=True)
                gone += 1
            except UploadBusy:
                continue  # being appended to this very moment: not abandoned after all
        return gone

    def referenced_blobs(self) -> set[str]:
        """Pieces of every upload still on record (in progress, or complete and not yet imported)."""
        return {sha for up in self._all() for sha, _ in up.pieces}

    def list(self) -> list[Upload]:
        return list(self._all())


class _Lock:
    def __init__(self, path: Path, wait_s: float) -> None:
        self.path = path
        self.wait_s = wait_s
        self._fd: int | None = None

    def __enter__(self) -> _Lock:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise UploadBusy("another request is writing to this upload; retry in a moment") from None
                time.sleep(0.01)  # flock has no timeout of its own
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
