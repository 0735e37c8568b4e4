"""Encryption at rest of a home: on for new homes, `enable` for old ones, `rotate`, sealed job records, the
staged input of a queued job kept by gc, and the in-memory store pair."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from maas.config import Settings
from maas.errors import FailedPrecondition
from maas.jobs.orm import JobRow
from maas.registry import Registry
from maas.registry.blob_encrypted import EncryptedBlobStore
from maas.registry.blob_memory import MemoryBlobStore
from maas.registry.metadata import open_metadata_store
from maas.registry.sealed_records import FIELD
from maas.security.envelope import HEADER

SECRET = b"model bytes nobody may read on disk " * 100


def _stored(home: Path) -> list[Path]:
    return [p for p in (home / "artifacts" / "sha256").rglob("*") if p.is_file()]


def _legacy_home(home: Path, database_url: str) -> None:
    """A home as maas made it before encryption existed: plaintext blobs and no encryption state."""
    home.mkdir(parents=True)
    (home / "encryption.json").write_text(json.dumps({"encrypted": False}))
    with Registry.open(home, database_url=database_url) as reg:
        reg.publish("a", {"model.onnx": SECRET, "source.h5": b"another file"})
        reg.publish("b", {"model.onnx": SECRET + b"!"})
    (home / "encryption.json").unlink()


def test_a_new_home_is_encrypted_with_a_private_key_file(registry: Registry) -> None:
    v = registry.publish("m", {"model.onnx": SECRET})
    home = registry.settings.home
    assert registry.encrypted
    key = home / "keys" / "master.key"
    assert key.stat().st_mode & 0o777 == 0o600 and (home / "keys").stat().st_mode & 0o777 == 0o700
    assert registry.settings.redacted()["master_key_file"] == str(key)  # what `maas config` prints
    assert all(SECRET[:40] not in p.read_bytes() for p in _stored(home))
    assert registry.read_artifact(v) == SECRET
    st = registry.encryption_status()
    assert (st.encrypted, st.blobs, st.sealed, st.plaintext) == (True, 1, 1, 0)


def test_a_legacy_home_stays_plaintext_until_enabled_then_resumes(home: Path, database_url: str) -> None:
    _legacy_home(home, database_url)
    with Registry.open(home, database_url=database_url) as reg:
        assert not reg.encrypted and not (home / "keys" / "master.key").exists()
        st = reg.encryption_status()
        assert (st.encrypted, st.blobs, st.plaintext) == (False, 3, 3)
        assert any(SECRET in p.read_bytes() for p in _stored(home))
        assert reg.enable_encryption() == 3
        assert reg.encrypted and all(SECRET[:40] not in p.read_bytes() for p in _stored(home))
        assert reg.read_artifact(reg.get("a:1")) == SECRET
        reg.publish("c", {"model.onnx": SECRET + b"new"})
        assert reg.enable_encryption() == 0  # running it again finds nothing left to do
    with Registry.open(home, database_url=database_url) as reg:
        st = reg.encryption_status()
        assert (st.encrypted, st.blobs, st.sealed, st.plaintext) == (True, 4, 4, 0)
        assert reg.read_artifact(reg.get("b")) == SECRET + b"!"


def test_rotate_rewraps_data_keys_only_and_retires_the_old_key(registry: Registry) -> None:
    registry.publish("m", {"model.onnx": SECRET})
    registry.publish("n", {"model.onnx": SECRET * 2})
    old = registry.encryption_status().current_key
    bodies = {p: p.read_bytes()[HEADER:] for p in _stored(registry.settings.home)}
    new, rewrapped, retired = registry.rotate_master_key()
    assert new != old and rewrapped == 2 and retired == [old]
    assert {p: p.read_bytes()[HEADER:] for p in bodies} == bodies  # the data was not re-encrypted
    st = registry.encryption_status()
    assert st.keys == [new] and st.by_key == {new: 2} and not st.rotation_in_progress
    assert registry.read_artifact(registry.get("n")) == SECRET * 2
    ring = json.loads((registry.settings.home / "keys" / "master.key").read_text())
    assert list(ring["keys"]) == [new]


def test_a_key_from_the_environment_cannot_be_rotated_here(home: Path) -> None:
    key = base64.b64encode(bytes(range(32))).decode()
    with Registry(Settings(home=home, master_key=key, database_url="memory://")) as reg:
        reg.publish("m", {"model.onnx": SECRET})
        assert reg.encryption_status().key_source == "MAAS_MASTER_KEY"
        assert not (home / "keys").exists()
        with pytest.raises(FailedPrecondition, match="MAAS_MASTER_KEY"):
            reg.rotate_master_key()


def test_job_params_and_results_are_sealed(registry: Registry) -> None:
    jobs = registry.job_store()
    job = jobs.submit("import", {"name": "secret-name", "labels": ["x"]})
    from maas.jobs.entities import JobState

    jobs.finish(job.id, JobState.SUCCEEDED, result={"version": "secret-result"})
    with registry.store.reading() as s:
        row = s.scalar(select(JobRow).where(JobRow.id == job.id))
        assert set(row.params) == {FIELD} and set(row.result) == {FIELD}
        assert "secret" not in json.dumps(row.params) + json.dumps(row.result)
    got = jobs.get(job.id)
    assert got.params == {"name": "secret-name", "labels": ["x"]} and got.result == {"version": "secret-result"}


def test_gc_keeps_the_staged_input_of_an_unfinished_job(registry: Registry, tmp_path: Path) -> None:
    upload = tmp_path / "upload.onnx"
    upload.write_bytes(b"an upload waiting in the queue")
    sha = registry.stage_input(upload)
    jobs = registry.job_store()
    job = jobs.submit("import", {"blob": sha, "name": "m"}, input_blob=sha)
    assert registry.gc(grace=timedelta(0)).removed_blobs == 0
    with registry.staged_input(sha, "model.onnx") as path:
        assert path.read_bytes() == upload.read_bytes() and path.name == "model.onnx"
        assert path.parent.stat().st_mode & 0o777 == 0o700
    assert not path.exists()
    jobs.cancel(job.id)
    assert registry.gc(grace=timedelta(0)).removed_blobs == 1


def test_the_in_memory_pair_serves_unit_tests(tmp_path: Path) -> None:
    blobs = MemoryBlobStore()
    reg = Registry(Settings(home=tmp_path), metadata=open_metadata_store("memory://"), blobs=blobs)
    with reg:
        v = reg.publish("m", {"model.onnx": SECRET})
        assert reg.read_artifact(v) == SECRET and reg.get("m").version == 1
        assert len(blobs.objects) == 1 and not (tmp_path / "artifacts").exists()


def test_an_encrypted_memory_store(tmp_path: Path) -> None:
    from maas.security.key_provider import EnvKeyProvider

    inner = MemoryBlobStore()
    key = base64.b64encode(bytes(32)).decode()
    with Registry(Settings(home=tmp_path), metadata=open_metadata_store("memory://"),
                  blobs=EncryptedBlobStore(inner, EnvKeyProvider(key))) as reg:
        v = reg.publish("m", {"model.onnx": SECRET})
        assert all(SECRET[:40] not in data for data, _ in inner.objects.values())
        assert reg.read_artifact(v) == SECRET
