"""The private folder for decrypted files: memory-backed, mode 0700, removed on close and after a crash."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from maas.registry.plaintext_dir import PlaintextDir, clean_stale


def test_private_memory_backed_and_removed_on_close() -> None:
    d = PlaintextDir()
    f = d.path_for("x")
    f.write_bytes(b"plain")
    if Path("/dev/shm").is_dir():
        assert d.path.parent == Path("/dev/shm")
    assert d.path.stat().st_mode & 0o777 == 0o700 and str(os.getpid()) in d.path.name
    d.discard("x")
    assert not f.exists()
    folder = d.path
    d.close()
    assert not folder.exists()


def test_a_dead_process_folder_is_cleaned_at_start_up(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / f"maas-plain-{os.getuid()}-{pid}-abc"
    stale.mkdir()
    (stale / "model").write_bytes(b"plain")
    alive = tmp_path / f"maas-plain-{os.getuid()}-{os.getpid()}-def"
    alive.mkdir()
    assert clean_stale(tmp_path) == 1
    assert not stale.exists() and alive.exists()
