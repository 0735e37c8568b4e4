"""`kill -9` in the middle of writing a version: nothing half-visible, nothing committed lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest

from maas.registry import Registry

WRITER = textwrap.dedent(
    """
    import os, sys
    from maas.registry import Registry
    reg = Registry.open(sys.argv[1], database_url=sys.argv[2])
    while True:
        v = reg.publish("victim", {"model.onnx": os.urandom(16 * 1024 * 1024)})
        print(v.version, flush=True)
    """
)


def _kill_writer_after(home: Path, url: str, published: int, extra_delay: float) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(home), url], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert proc.stdout is not None
        for _ in range(published):
            line = proc.stdout.readline()
            assert line, "writer died before publishing"
        time.sleep(extra_delay)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.slow
def test_kill_during_writes_leaves_registry_consistent(home: Path, database_url: str) -> None:
    Registry.open(home, database_url=database_url).close()  # schema in place before the first kill
    # Kill at several points: during the blob write, around the commit, right after a publish.
    for delay in (0.0, 0.05, 0.15, 0.3):
        _kill_writer_after(home, database_url, published=1, extra_delay=delay)

    with Registry.open(home, database_url=database_url) as reg:
        versions = reg.list_versions("victim")
        numbers = [v.version for v in versions]
        assert numbers == list(range(1, len(numbers) + 1)), "versions must be gap-free"
        assert len(numbers) >= 4
        for v in versions:
            assert v.state == "ready"
            reg.verify(v)  # every committed version still loads and verifies

        report = reg.gc(grace=timedelta(0))
        assert list(reg.artifacts.iter_temp()) == []
        referenced = {a.sha256 for v in versions for a in v.artifacts}
        assert {b.sha256 for b in reg.artifacts.iter_blobs()} == referenced
        assert report.removed_blobs + report.removed_temp_files >= 0

        nxt = reg.publish("victim", {"model.onnx": b"after the crash"})
        assert nxt.version == numbers[-1] + 1
