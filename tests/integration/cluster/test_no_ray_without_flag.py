"""Without `--ray` nothing of Ray is imported: a whole single-process server starts, answers, and stops with
neither `ray` nor `maas.cluster` in `sys.modules` (import-linter's contract checks the static imports)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

CODE = """
import sys, httpx
from maas.config import Settings
from maas.testing.live_server import live_server
import maas.cli.main  # the CLI, whose serve command imports maas.cluster only for --ray
with live_server(Settings(home=sys.argv[1])) as server:
    assert httpx.get(server.http_url + "/v2/health/ready").status_code == 200
bad = sorted(m for m in sys.modules if m.split(".")[0] == "ray" or m.startswith("maas.cluster"))
assert not bad, bad
"""


def test_single_process_server_imports_no_ray(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-c", CODE, str(tmp_path / "home")], check=True, timeout=120,
                   env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
