"""Prediction logs in an encrypted home are sealed with the store's envelope: nothing readable on disk, each
file bound to its path, older plaintext files still read, and a registry says which keys to seal with."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from maas.errors import IntegrityError
from maas.monitor.log_writer import FsspecLogWriter, SealedLogWriter, open_log_writer
from maas.registry import Registry
from maas.security.key_provider import EnvKeyProvider

ROW = b"PAR1 the request's inputs: 0.123456789 0.987654321 PAR1"


@pytest.fixture
def keys() -> EnvKeyProvider:
    return EnvKeyProvider(base64.b64encode(os.urandom(32)).decode())


def test_a_sealed_file_holds_no_plaintext_and_reads_back(tmp_path: Path, keys: EnvKeyProvider) -> None:
    writer = SealedLogWriter(FsspecLogWriter(str(tmp_path)), keys)
    writer.write("model=m/version=1/hour=2026-12-01T10/a.parquet", ROW)
    (stored,) = list(tmp_path.rglob("*.parquet"))
    assert b"0.123456789" not in stored.read_bytes()
    assert writer.read("model=m/version=1/hour=2026-12-01T10/a.parquet") == ROW
    assert writer.list() == ["model=m/version=1/hour=2026-12-01T10/a.parquet"]


def test_a_file_moved_to_another_partition_fails_authentication(tmp_path: Path, keys: EnvKeyProvider) -> None:
    writer = SealedLogWriter(FsspecLogWriter(str(tmp_path)), keys)
    writer.write("model=a/version=1/hour=h/x.parquet", ROW)
    moved = tmp_path / "model=b" / "version=1" / "hour=h"
    moved.mkdir(parents=True)
    (tmp_path / "model=a/version=1/hour=h/x.parquet").rename(moved / "x.parquet")
    with pytest.raises(IntegrityError):
        writer.read("model=b/version=1/hour=h/x.parquet")


def test_plaintext_files_from_before_encryption_are_still_read(tmp_path: Path, keys: EnvKeyProvider) -> None:
    FsspecLogWriter(str(tmp_path)).write("old.parquet", ROW)
    assert SealedLogWriter(FsspecLogWriter(str(tmp_path)), keys).read("old.parquet") == ROW


def test_the_registry_of_an_encrypted_home_seals_its_logs(tmp_path: Path) -> None:
    with Registry.open(tmp_path / "home") as reg:
        assert reg.encrypted  # new homes are encrypted by default
        writer = open_log_writer(str(tmp_path / "logs"), reg.sealing_keys())
    assert isinstance(writer, SealedLogWriter)
    assert isinstance(open_log_writer(str(tmp_path / "plain"), None), FsspecLogWriter)
