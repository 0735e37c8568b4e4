"""The blob store: content addressing, verification, and paths built from digests only."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from maas.errors import IntegrityError, NotFound
from maas.registry.artifacts import ArtifactStore


def test_put_is_content_addressed_and_durable(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "blobs"))
    sha, size = store.put_bytes(b"hello")
    assert sha == hashlib.sha256(b"hello").hexdigest() and size == 5
    assert store.local_path(sha) == tmp_path / "blobs" / "sha256" / sha[:2] / sha[2:]
    assert store.read_bytes(sha) == b"hello"
    assert list(store.iter_temp()) == []


def test_file_url_scheme_works(tmp_path: Path) -> None:
    store = ArtifactStore(f"file://{tmp_path / 'b'}")
    sha, _ = store.put_bytes(b"x")
    assert store.exists(sha)


@pytest.mark.parametrize("digest", ["../../etc/passwd", "a" * 63, "g" * 64, "A" * 64])
def test_digests_are_validated_before_building_paths(tmp_path: Path, digest: str) -> None:
    store = ArtifactStore(str(tmp_path))
    with pytest.raises(IntegrityError):
        store.read_bytes(digest)


def test_missing_blob(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    with pytest.raises(NotFound):
        store.verify("0" * 64)


def test_truncated_blob_fails_verification(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    sha, _ = store.put_bytes(b"0123456789")
    store.local_path(sha).write_bytes(b"01234")
    with pytest.raises(IntegrityError):
        store.verify(sha)
