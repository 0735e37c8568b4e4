"""Docs run: examples/breast_cancer/walkthrough.sh, executed as a user would (copied to a fresh folder, the
venv's `maas` on PATH, its own MAAS_HOME and free ports), with the outputs each step promises checked."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "breast_cancer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_breast_cancer_walkthrough(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    work = tmp_path / "breast_cancer"
    shutil.copytree(EXAMPLE, work)
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "MAAS_HOME": str(tmp_path / "home"),
        "MAAS_HTTP_PORT": str(free_port()), "MAAS_GRPC_PORT": str(free_port()),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    result = subprocess.run(["bash", "walkthrough.sh"], cwd=work, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "breast-cancer:1" in out and "search: best" in out and "cv accuracy:" in out
    assert "'train.family': 'gradient_boosting'" in out  # versions show printed the record
    assert "wrote request.json (row 0, a malignant tumour)" in out
    response = json.loads(next(line for line in out.splitlines() if line.startswith('{"model_name":"breast-cancer"')))
    assert response["model_version"] == "1"
    outputs = {o["name"]: o["data"] for o in response["outputs"]}
    assert outputs["label"] == [0] and outputs["probabilities"][0] > 0.5
    assert "predicted: malignant  probabilities: malignant " in out
