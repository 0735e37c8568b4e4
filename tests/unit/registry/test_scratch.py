"""Work folders: private and memory-backed when asked (with the libraries' temp files following), removed on
every exit path, and the process's temp folder restored when the last one closes."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from maas.registry import scratch


def test_a_private_work_dir_is_under_a_0700_folder_in_shm_and_redirects_tempfile() -> None:
    before = tempfile.gettempdir()
    with scratch.work_dir("maas-t-", private=True) as work:
        root = work.parent
        if Path("/dev/shm").is_dir():
            assert root.parent == Path("/dev/shm")
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
        assert tempfile.gettempdir() == str(root)
        assert Path(tempfile.mkdtemp()).parent == root
        assert scratch.child_env()["TMPDIR"] == str(root)
        with scratch.work_dir("maas-inner-", private=True) as inner:
            assert inner.parent == root
        assert tempfile.gettempdir() == str(root)  # still open: the outer folder keeps the redirect
    assert not work.exists()
    assert tempfile.gettempdir() == before


def test_a_work_dir_is_removed_when_the_work_fails() -> None:
    for private in (True, False):
        with pytest.raises(RuntimeError), scratch.work_dir("maas-t-", private=private) as work:
            (work / "model.onnx").write_bytes(b"weights")
            raise RuntimeError("conversion failed")
        assert not work.exists()
    assert tempfile.gettempdir() != str(scratch.private_root())


def test_an_ordinary_work_dir_leaves_tempfile_alone() -> None:
    with scratch.work_dir("maas-t-", private=False) as work:
        assert work.parent == Path(tempfile.gettempdir())
        assert tempfile.gettempdir() != str(scratch.private_root())


def test_temp_dir_for_long_lived_plaintext_is_private_when_asked() -> None:
    held = scratch.temp_dir("maas-llm-", private=True)
    try:
        assert Path(held.name).parent == scratch.private_root()
        assert os.access(held.name, os.W_OK)
    finally:
        held.cleanup()


def test_release_paths_removes_the_decrypted_copies(tmp_path: Path) -> None:
    from maas.config import Settings
    from maas.registry import Registry

    with Registry(Settings(home=tmp_path / "home")) as reg:
        assert reg.encrypted
        version = reg.publish("m", {"model.onnx": b"weights in the clear", "extra.bin": b"more"})
        paths = [reg.artifact_path(version), reg.artifact_path(version, "extra.bin")]
        assert [p.read_bytes() for p in paths] == [b"weights in the clear", b"more"]
        assert all(stat.S_IMODE(p.parent.stat().st_mode) == 0o700 for p in paths)
        reg.release_paths(version)
        assert not any(p.exists() for p in paths)
