"""Docs run: examples/digits/walkthrough.sh, executed as a user would (copied to a fresh folder, the venv's
`maas` on PATH, its own MAAS_HOME and free ports), with the outputs each step promises checked."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_digits_walkthrough(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    work = tmp_path / "digits"
    shutil.copytree(EXAMPLE, work)
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "MAAS_HOME": str(tmp_path / "home"),
        "MAAS_HTTP_PORT": str(free_port()), "MAAS_GRPC_PORT": str(free_port()), "EPOCHS": "4",
        "PYTHONPATH": os.pathsep.join(sys.path), "KERAS_BACKEND": "torch",
    }
    result = subprocess.run(["bash", "walkthrough.sh"], cwd=work, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "saved digits.h5" in out
    assert "digits:1" in out and "published digits:2 (quantize of digits:1)" in out
    assert "digits@production → 2" in out
    responses = [json.loads(line) for line in out.splitlines() if line.startswith('{"model_name":"digits"')]
    assert len(responses) == 2  # the JSON tensor and the PNG
    expected = next(line for line in out.splitlines() if "wrote request.json and digit.png" in line).split("(a ")[1][0]
    for r in responses:
        labels = next(o for o in r["outputs"] if o["name"] == "labels")
        assert labels["data"][0] == expected
    assert f"http tensor: ['{expected}'" in out and f"grpc png:    ['{expected}'" in out
    assert_only_ignored_files_added(work)


def assert_only_ignored_files_added(work: Path) -> None:
    """What the walk-through wrote is all in the example's .gitignore, so a clone stays clean."""
    added = sorted(str(p.relative_to(work)) for p in work.rglob("*")
                   if p.is_file() and not (EXAMPLE / p.relative_to(work)).exists())
    assert added
    ignored = subprocess.run(["git", "-C", str(EXAMPLE), "check-ignore", "--no-index", "--", *added],
                             capture_output=True, text=True).stdout.split()
    assert sorted(ignored) == added


def test_the_example_readme_says_which_ports_the_clients_use() -> None:
    text = (EXAMPLE / "README.md").read_text()
    assert "MAAS_HTTP_PORT" in text and "MAAS_GRPC_PORT" in text
