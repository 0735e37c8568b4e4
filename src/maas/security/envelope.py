"""AES-256-GCM envelope encryption of a byte stream, in chunks, under a fresh data key per blob.

Layout: a fixed header (magic, random blob id, key-encryption-key id, the data key wrapped by that KEK),
then the chunks, each `CHUNK` plaintext bytes (the last one shorter, possibly empty) plus its 16-byte tag.
Every chunk's associated data binds the blob id, its index and whether it is the last one, so chunks cannot
be reordered, dropped, truncated or moved between blobs without the tag check failing; the last chunk's also
binds the blob's name (its plaintext SHA-256, known only once all of it has been read), so a whole sealed
blob cannot be passed off under another name either. The data key is
never reused across blobs, which is what makes the counter nonces (the chunk index) safe. Re-wrapping the
data key under a new KEK (`rewrap_header`) leaves every chunk as it is.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from maas.errors import IntegrityError

MAGIC = b"MAASENC1"
CHUNK = 1024 * 1024  # plaintext bytes per chunk: far below AES-GCM's 2**36-byte message limit
TAG = 16
BLOB_ID = 16
KEY_ID = 16  # ascii hex characters
_WRAPPED = 32 + TAG
HEADER = len(MAGIC) + BLOB_ID + KEY_ID + 12 + _WRAPPED

# (key id) -> the 32-byte key-encryption key; raises FailedPrecondition when it is not available (a wrong
# or missing master key).
KeyLookup = Callable[[str], bytes]


@dataclass(frozen=True)
class Header:
    blob_id: bytes
    key_id: str
    wrap_nonce: bytes
    wrapped_key: bytes

    def to_bytes(self) -> bytes:
        return MAGIC + self.blob_id + self.key_id.encode("ascii") + self.wrap_nonce + self.wrapped_key

    @classmethod
    def parse(cls, raw: bytes) -> Header:
        if len(raw) < HEADER or not raw.startswith(MAGIC):
            raise IntegrityError("not an encrypted blob (its header is missing or truncated)")
        at = len(MAGIC)
        blob_id, at = raw[at:at + BLOB_ID], at + BLOB_ID
        try:
            key_id = raw[at:at + KEY_ID].decode("ascii")
        except UnicodeDecodeError:
            raise IntegrityError("the encrypted blob's header is corrupt") from None
        at += KEY_ID
        return cls(blob_id, key_id, raw[at:at + 12], raw[at + 12:HEADER])


def is_sealed(prefix: bytes) -> bool:
    return prefix.startswith(MAGIC)


def _wrap_aad(blob_id: bytes, key_id: str) -> bytes:
    return MAGIC + blob_id + key_id.encode("ascii")


def _chunk_aad(blob_id: bytes, index: int, final: bool, name: bytes = b"") -> bytes:
    return MAGIC + blob_id + struct.pack(">QB", index, 1 if final else 0) + (name if final else b"")


def _nonce(index: int) -> bytes:
    return b"\0\0\0\0" + struct.pack(">Q", index)


def _unwrap(header: Header, keys: KeyLookup) -> bytes:
    kek = keys(header.key_id)
    try:
        return AESGCM(kek).decrypt(header.wrap_nonce, header.wrapped_key, _wrap_aad(header.blob_id, header.key_id))
    except InvalidTag:
        # Key ids are derived from the keys, so the right key was found: the header itself was altered.
        raise IntegrityError(
            f"the encrypted blob's data key fails authentication under master key {header.key_id} (tampered header)"
        ) from None


def new_header(key_id: str, kek: bytes) -> tuple[Header, bytes]:
    """A fresh data key and blob id; returns the header (with the wrapped key) and the plain data key."""
    data_key, blob_id, nonce = AESGCM.generate_key(256), os.urandom(BLOB_ID), os.urandom(12)
    wrapped = AESGCM(kek).encrypt(nonce, data_key, _wrap_aad(blob_id, key_id))
    return Header(blob_id, key_id, nonce, wrapped), data_key


def rewrap_header(raw: bytes, keys: KeyLookup, key_id: str, kek: bytes) -> bytes:
    """The same header with its data key wrapped under (key_id, kek) instead; the chunks stay valid."""
    header = Header.parse(raw)
    data_key = _unwrap(header, keys)
    nonce = os.urandom(12)
    wrapped = AESGCM(kek).encrypt(nonce, data_key, _wrap_aad(header.blob_id, key_id))
    return Header(header.blob_id, key_id, nonce, wrapped).to_bytes()


def _rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    buf = bytearray()
    for piece in chunks:
        if not buf and len(piece) == size:
            yield piece  # the common case (reads of CHUNK bytes): no copy
            continue
        buf += piece
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    yield bytes(buf)  # the last chunk, possibly empty: an empty blob still has one authenticated chunk


def seal(chunks: Iterable[bytes], key_id: str, kek: bytes, name: bytes | Callable[[], bytes] = b"") -> Iterator[bytes]:
    """Encrypt a plaintext stream: yields the header, then one ciphertext record per chunk.

    `name` (or a callable giving it once `chunks` is exhausted) is bound to the last chunk."""
    header, data_key = new_header(key_id, kek)
    aead = AESGCM(data_key)
    yield header.to_bytes()
    pieces = _rechunk(chunks, CHUNK)
    index, current = 0, next(pieces)
    for following in pieces:
        # A full chunk followed by an empty remainder is the last one: the empty tail is not written.
        if not following and len(current) == CHUNK:
            break
        yield aead.encrypt(_nonce(index), current, _chunk_aad(header.blob_id, index, False))
        index, current = index + 1, following
    final_name = name() if callable(name) else name
    yield aead.encrypt(_nonce(index), current, _chunk_aad(header.blob_id, index, True, final_name))


def unseal(src: IO[bytes], keys: KeyLookup, name: bytes = b"") -> Iterator[bytes]:
    """Decrypt and authenticate a sealed stream chunk by chunk; raises IntegrityError on any tampering, or
    when the stream was sealed under another `name`. Every chunk is authentic when yielded; a truncation
    or a wrong name is only known at the last one."""
    header = Header.parse(src.read(HEADER))
    aead = AESGCM(_unwrap(header, keys))
    record = CHUNK + TAG
    index, current = 0, src.read(record)
    while True:
        following = src.read(record) if len(current) == record else b""
        final = not following
        if len(current) < TAG:
            raise IntegrityError(f"the encrypted blob is truncated at chunk {index}")
        try:
            yield aead.decrypt(_nonce(index), current, _chunk_aad(header.blob_id, index, final, name))
        except InvalidTag:
            raise IntegrityError(
                f"chunk {index} of the encrypted blob fails authentication (tampered, truncated or reordered)"
            ) from None
        if final:
            return
        index, current = index + 1, following


def header_key_id(prefix: bytes) -> str:
    return Header.parse(prefix).key_id
