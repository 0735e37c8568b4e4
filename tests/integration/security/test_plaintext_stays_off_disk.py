"""In an encrypted home no model bytes touch ordinary disk in the clear: imports, optimizations, exports and
uploads work in the private memory-backed folder, and so do the libraries' own temporary files. The work
runs in a child whose TMPDIR is watched with inotify, so even a file made and removed at once is seen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.skipif(not Path("/dev/shm").is_dir() or sys.platform != "linux", reason="needs /dev/shm and inotify")
def test_import_optimize_export_and_upload_create_nothing_in_tmpdir(tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    out = tmp_path / "result.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path]), "TMPDIR": str(tmpdir)}
    env.pop("MAAS_HOME", None)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.integration.security.plaintext_worker", str(tmp_path / "home"), str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["served"] == ["refused: InvalidArgument", "1", "succeeded"]
    assert result["pattern_in_export"]  # the watched bytes really were in the model
    assert result["created"] == [], f"created in TMPDIR during the work: {result['created']}"
    assert not list(Path("/dev/shm").glob(f"maas-plain-{os.getuid()}-{result['pid']}-*"))  # removed at exit
