"""Twelve concurrent writers of one model get distinct, gap-free version numbers (threads and processes)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from maas.registry import Registry

WRITERS = 12


def test_concurrent_threads(registry: Registry) -> None:
    with ThreadPoolExecutor(WRITERS) as pool:
        futures = [pool.submit(registry.publish, "m", {"model.onnx": f"t{i}".encode()}) for i in range(WRITERS)]
        numbers = sorted(f.result().version for f in futures)
    assert numbers == list(range(1, WRITERS + 1))


PUBLISH_ONE = textwrap.dedent(
    """
    import sys
    from maas.registry import Registry
    with Registry.open(sys.argv[1], database_url=sys.argv[2]) as reg:
        print(reg.publish("m", {"model.onnx": sys.argv[3].encode()}).version)
    """
)


@pytest.mark.slow
def test_concurrent_processes_on_a_fresh_registry(home: Path, database_url: str) -> None:
    # No schema yet: the processes also race to create it.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PUBLISH_ONE, str(home), database_url, f"p{i}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        for i in range(WRITERS)
    ]
    numbers = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
        numbers.append(int(out))
    assert sorted(numbers) == list(range(1, WRITERS + 1))
    with Registry.open(home, database_url=database_url) as reg:
        assert [v.version for v in reg.list_versions("m")] == list(range(1, WRITERS + 1))
