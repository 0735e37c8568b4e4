"""Every blob store keeps the same promises: content addressing, dedup, verified reads, digest-only paths.

The same tests run on the local, fsspec and in-memory stores, and on the encrypting wrapper over each.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import pytest

from maas.errors import IntegrityError, NotFound
from maas.registry.blob_encrypted import EncryptedBlobStore
from maas.registry.blob_fsspec import FsspecBlobStore
from maas.registry.blob_local import LocalBlobStore
from maas.registry.blob_memory import MemoryBlobStore
from maas.registry.blobs import BlobStore, open_blob_store
from maas.security.key_provider import EnvKeyProvider

KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # base64 of bytes 0..31


def _local(tmp: Path) -> BlobStore:
    return LocalBlobStore(tmp / "blobs")


def _fsspec(tmp: Path) -> BlobStore:
    return FsspecBlobStore(f"file://{tmp / 'blobs'}", cache_dir=tmp / "cache")


def _memory(tmp: Path) -> BlobStore:
    return MemoryBlobStore()


PLAIN: dict[str, Callable[[Path], BlobStore]] = {"local": _local, "fsspec": _fsspec, "memory": _memory}


@pytest.fixture(params=[*PLAIN, *(f"encrypted-{k}" for k in PLAIN)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    kind = str(request.param)
    inner = PLAIN[kind.removeprefix("encrypted-")](tmp_path)
    s: BlobStore = EncryptedBlobStore(inner, EnvKeyProvider(KEY)) if kind.startswith("encrypted") else inner
    request.addfinalizer(s.close)
    return s


def _put(store: BlobStore, data: bytes) -> str:
    sha, size = store.put_stream(io.BytesIO(data))
    assert size == len(data)
    return sha


def _corrupt(store: BlobStore, sha: str, edit: Callable[[bytes], bytes]) -> None:
    """Rewrite the stored object through the raw layer, as an attacker with disk access could."""
    with store.open_raw(sha) as f:
        raw = f.read()
    store.commit(store.stage([edit(raw)]), sha, replace=True)


def test_put_is_content_addressed_and_verified(store: BlobStore) -> None:
    sha = _put(store, b"hello")
    assert sha == hashlib.sha256(b"hello").hexdigest()
    assert store.exists(sha)
    assert store.open_bytes(sha) == b"hello"
    assert store.open_path(sha).read_bytes() == b"hello"
    store.verify(sha)
    assert list(store.iter_temp()) == []
    assert [b.sha256 for b in store.iter_blobs()] == [sha]


def test_identical_content_is_stored_once(store: BlobStore) -> None:
    a, b = _put(store, b"same"), _put(store, b"same")
    assert a == b and len(list(store.iter_blobs())) == 1


def test_large_and_empty_blobs_round_trip(store: BlobStore) -> None:
    big = bytes(range(256)) * (9 * 1024 + 7)  # a few chunks and a partial one
    assert store.open_bytes(_put(store, big)) == big
    assert store.open_bytes(_put(store, b"")) == b""


@pytest.mark.parametrize("digest", ["../../etc/passwd", "a" * 63, "g" * 64, "A" * 64])
def test_digests_are_validated_before_building_paths(store: BlobStore, digest: str) -> None:
    with pytest.raises(IntegrityError):
        store.open_bytes(digest)


def test_missing_blob(store: BlobStore) -> None:
    with pytest.raises(NotFound):
        store.verify("0" * 64)
    with pytest.raises(NotFound):
        store.open_bytes("0" * 64)


def test_tampered_or_truncated_blob_fails_every_read(store: BlobStore) -> None:
    sha = _put(store, b"0123456789" * 1000)
    _corrupt(store, sha, lambda raw: raw[:-3])
    for read in (store.verify, store.open_bytes, store.open_path):
        with pytest.raises(IntegrityError):
            read(sha)
    sha2 = _put(store, b"abcdef" * 1000)
    _corrupt(store, sha2, lambda raw: raw[:40] + bytes([raw[40] ^ 0x01]) + raw[41:])
    with pytest.raises(IntegrityError):
        store.open_bytes(sha2)


def test_a_corrupt_copy_is_replaced_by_the_next_put(store: BlobStore) -> None:
    sha = _put(store, b"heal me")
    _corrupt(store, sha, lambda raw: raw[:-1])
    assert _put(store, b"heal me") == sha
    assert store.open_bytes(sha) == b"heal me"


def test_delete_and_temp_housekeeping(store: BlobStore) -> None:
    sha = _put(store, b"bye")
    temp = store.stage([b"half written"])
    assert [t[0] for t in store.iter_temp()] == [temp]
    store.delete_temp(temp)
    store.delete(sha)
    assert not store.exists(sha) and list(store.iter_temp()) == []


def test_plaintext_stores_keep_the_bytes_as_they_are(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "b")
    sha = _put(store, b"hello")
    assert (tmp_path / "b" / "sha256" / sha[:2] / sha[2:]).read_bytes() == b"hello"


def test_stores_are_chosen_by_url_scheme(tmp_path: Path) -> None:
    assert isinstance(open_blob_store(str(tmp_path / "a"), tmp_path), LocalBlobStore)
    assert isinstance(open_blob_store(f"file://{tmp_path / 'b'}", tmp_path), LocalBlobStore)
    assert isinstance(open_blob_store("memory://", tmp_path), MemoryBlobStore)
    assert isinstance(open_blob_store("memory://x", tmp_path), MemoryBlobStore)


def test_a_sealed_blob_cannot_be_passed_off_under_another_name(tmp_path: Path) -> None:
    store = EncryptedBlobStore(MemoryBlobStore(), EnvKeyProvider(KEY))
    a, b = _put(store, b"model a" * 1000), _put(store, b"model b" * 1000)
    with store.open_raw(a) as f:
        sealed_a = f.read()
    store.commit(store.stage([sealed_a]), b, replace=True)  # a valid envelope, under the wrong name
    with pytest.raises(IntegrityError):
        store.open_bytes(b)
