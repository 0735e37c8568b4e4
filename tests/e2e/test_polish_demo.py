"""`maas demo` as `make run` calls it: it adds digits to a registry that already holds other models, shows
its training progress, prints no framework noise, and adds nothing the second time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from maas.registry import Registry

MAAS = [sys.executable, "-m", "maas.cli"]
NOISE = ("absl", "oneDNN", "tensorflow", "TensorFlow", "HDF5", "input_shape", "alembic", "Traceback")


def run_demo(home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MAAS_HOME": str(home), "PYTHONPATH": os.pathsep.join(sys.path)}
    for key in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS", "GRPC_VERBOSITY"):  # as a user's shell has it
        env.pop(key, None)
    return subprocess.run([*MAAS, "demo", "--epochs", "1"], env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_demo_adds_digits_beside_other_models_quietly(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Registry.open(home) as reg:
        reg.publish("other", {"model.onnx": b"not served here"})
    first = run_demo(home)
    assert first.returncode == 0, first.stderr
    assert "epoch 1/1: accuracy" in first.stdout and "production -> digits:" in first.stdout
    for noise in NOISE:
        assert noise not in first.stderr, first.stderr
    with Registry.open(home) as reg:
        assert {"digits", "other"} <= {m.name for m in reg.list_models()}  # (and the language models)
        assert [v.version for v in reg.list_versions("digits")] == [1, 2]
    again = run_demo(home)
    assert again.returncode == 0 and "already has the digits demo" in again.stdout
