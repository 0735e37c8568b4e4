"""Resumable uploads in the registry: pieces stored as sealed blobs in order, the offset checked, a body cut
short kept as far as it came, records that survive reopening the home, expiry, and what `gc` keeps."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from maas.errors import NotFound, PayloadTooLarge
from maas.registry import Registry
from maas.registry.uploads import OffsetConflict, UploadBusy, UploadGone, check_upload_id

DATA = bytes(range(256)) * 64  # 16 KiB that no other test stores


def _raw_files(home: Path) -> list[bytes]:
    return [p.read_bytes() for p in (home / "artifacts").rglob("*") if p.is_file()]


def _cut(data: bytes, after: int) -> Iterator[bytes]:
    """A body whose connection breaks after `after` bytes: the iterator simply ends there."""
    yield data[:after]


def test_pieces_append_in_order_and_read_back(registry: Registry) -> None:
    store = registry.uploads()
    up = store.create(len(DATA), {"name": "m", "filename": "m.onnx"}, created_by="alice")
    up = store.append(up.id, 0, [DATA[:1000], DATA[1000:5000]], created_by="alice")
    assert up.offset == 5000 and not up.complete
    with pytest.raises(OffsetConflict):
        store.append(up.id, 4000, [DATA[4000:]], created_by="alice")
    up = store.append(up.id, 5000, [DATA[5000:]], created_by="alice")
    assert up.complete and len(up.pieces) == 2
    assert b"".join(store.read(up)) == DATA
    joined = store.assemble(up)
    assert registry.artifacts.open_bytes(joined) == DATA


def test_a_body_cut_short_is_kept_and_the_upload_resumes(registry: Registry, home: Path) -> None:
    store = registry.uploads()
    up = store.create(len(DATA), {})
    up = store.append(up.id, 0, _cut(DATA, 7000))
    assert up.offset == 7000
    with Registry.open(home, database_url=registry.settings.database_url) as again:  # a restart
        resumed = again.uploads().get(up.id)
        assert resumed.offset == 7000 and resumed.length == len(DATA)
        done = again.uploads().append(up.id, 7000, [DATA[7000:]])
        assert b"".join(again.uploads().read(done)) == DATA


def test_pieces_and_records_are_sealed_in_an_encrypted_home(registry: Registry, home: Path) -> None:
    assert registry.encrypted
    store = registry.uploads()
    up = store.create(len(DATA), {"name": "secret-model-name"})
    store.append(up.id, 0, [DATA])
    assert not any(DATA[:64] in raw for raw in _raw_files(home))
    record = (home / "uploads" / f"{up.id}.json").read_text()
    assert "secret-model-name" not in record


def test_over_length_is_refused_and_stores_nothing(registry: Registry) -> None:
    store = registry.uploads()
    up = store.create(10, {})
    with pytest.raises(PayloadTooLarge):
        store.append(up.id, 0, [b"x" * 6, b"y" * 6])
    assert store.get(up.id).offset == 0


def test_another_callers_upload_and_bad_ids_are_not_found(registry: Registry) -> None:
    store = registry.uploads()
    up = store.create(10, {}, created_by="alice")
    with pytest.raises(NotFound):
        store.get(up.id, created_by="mallory")
    for bad in ("../../etc/passwd", "0" * 31, "g" * 32, up.id.upper(), ""):
        with pytest.raises(NotFound):
            check_upload_id(bad)
    with pytest.raises(NotFound):
        store.get("0" * 32)


def test_one_appender_at_a_time(registry: Registry) -> None:
    store = registry.uploads()
    up = store.create(10, {})
    with store.locked(up.id), pytest.raises(UploadBusy):  # held past the append's wait
        store.append(up.id, 0, [b"abc"])
    assert store.append(up.id, 0, [b"abc"]).offset == 3


def test_gc_keeps_uploads_in_progress_and_collects_expired_ones(registry: Registry) -> None:
    store = registry.uploads()
    live = store.create(len(DATA), {})
    store.append(live.id, 0, [DATA[:3000]])
    abandoned = store.create(len(DATA), {})
    store.append(abandoned.id, 0, [DATA[3000:9000]])
    report = registry.gc(grace=timedelta(0))
    assert report.removed_blobs == 0 and report.removed_uploads == 0
    assert store.get(live.id).offset == 3000

    stale = store.get(abandoned.id)
    store._save(replace(stale, touched_at=time.time() - store.expiry_s - 1))  # as if a day had passed
    with pytest.raises(UploadGone):
        store.get(abandoned.id)
    report = registry.gc(grace=timedelta(0))
    assert report.removed_uploads == 1 and report.removed_blobs == 1
    with pytest.raises(NotFound):
        store.get(abandoned.id)
    assert b"".join(store.read(store.get(live.id))) == DATA[:3000]


def test_delete_forgets_the_upload(registry: Registry) -> None:
    store = registry.uploads()
    up = store.create(10, {})
    store.append(up.id, 0, [b"abc"])
    store.delete(up.id)
    with pytest.raises(NotFound):
        store.get(up.id)
    assert registry.gc(grace=timedelta(0)).removed_blobs == 1
