"""`maas serve --ray` refuses what cannot work with one line and a non-zero exit, before Ray retries for minutes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ...e2e.test_serve_process import env_for, free_port

pytest.importorskip("ray")


@pytest.mark.parametrize("extra, message", [
    ([], "cannot reach the Ray cluster at 127.0.0.1:{port}"),
    (["--set", "lin.num_replicas=two"], "--set 'lin.num_replicas=two': num_replicas needs an integer"),
    (["--set", "lin.max_batch_size=-1"], "max_batch_size needs a non-negative integer"),
    (["--models", "missing"], "model 'missing' not found"),  # a named model must exist at the start
    (["--set", "ghost.num_replicas=2"], "--set names 'ghost', which is not served as a tensor model"),
])
def test_refusals_are_one_line(tmp_path: Path, extra: list[str], message: str) -> None:
    port = free_port()  # nothing listens there
    result = subprocess.run([sys.executable, "-m", "maas.cli", "serve", "--ray", f"127.0.0.1:{port}", *extra],
                            env=env_for(tmp_path / "home"), capture_output=True, text=True, timeout=90)
    assert result.returncode != 0
    assert message.format(port=port) in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
