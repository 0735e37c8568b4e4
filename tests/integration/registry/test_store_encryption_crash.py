"""`kill -9` in the middle of `maas encryption enable` and `maas encryption rotate`: every version stays
readable throughout, and running the command again finishes the job (no third key, nothing left plaintext)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from maas.registry import Registry

BLOBS = 24
CHILD = textwrap.dedent(
    """
    import sys, time
    from maas.registry import Registry

    def progress(done, total):
        print(done, flush=True)
        time.sleep(0.05)  # room for the parent's kill to land mid-way

    reg = Registry.open(sys.argv[1], database_url=sys.argv[2])
    getattr(reg, sys.argv[3])(progress)
    print("done", flush=True)
    """
)


def _kill_after(home: Path, url: str, verb: str, lines: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(home), url, verb], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert proc.stdout is not None
        for _ in range(lines):
            assert proc.stdout.readline().strip().isdigit(), f"{verb} ended before it could be interrupted"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def _payload(i: int) -> bytes:
    return (f"weights of model {i} ".encode() * 20000)[: 256 * 1024]


def _all_readable(home: Path, url: str) -> None:
    with Registry.open(home, database_url=url) as reg:
        for i in range(BLOBS):
            assert reg.read_artifact(reg.get(f"m{i}")) == _payload(i)


@pytest.mark.slow
def test_enable_survives_kill_and_resumes(home: Path, database_url: str) -> None:
    home.mkdir(parents=True)
    (home / "encryption.json").write_text(json.dumps({"encrypted": False}))
    with Registry.open(home, database_url=database_url) as reg:
        for i in range(BLOBS):
            reg.publish(f"m{i}", {"model.onnx": _payload(i)})
    (home / "encryption.json").unlink()  # as a home made before encryption existed

    _kill_after(home, database_url, "enable_encryption", lines=3)
    _all_readable(home, database_url)
    with Registry.open(home, database_url=database_url) as reg:
        st = reg.encryption_status()
        assert st.encrypted and 0 < st.sealed < BLOBS, st  # interrupted part-way
        reg.enable_encryption()
        st = reg.encryption_status()
        assert (st.sealed, st.plaintext) == (BLOBS, 0)
    _all_readable(home, database_url)


@pytest.mark.slow
def test_rotate_survives_kill_and_resumes(home: Path, database_url: str) -> None:
    with Registry.open(home, database_url=database_url) as reg:
        for i in range(BLOBS):
            reg.publish(f"m{i}", {"model.onnx": _payload(i)})
        old = reg.encryption_status().current_key

    _kill_after(home, database_url, "rotate_master_key", lines=3)
    _all_readable(home, database_url)
    with Registry.open(home, database_url=database_url) as reg:
        st = reg.encryption_status()
        assert st.rotation_in_progress and old in st.keys and st.current_key != old
        assert 0 < st.by_key.get(st.current_key or "", 0) < BLOBS, st
        new = st.current_key
        assert reg.rotate_master_key()[0] == new  # resumed, not a third key
        st = reg.encryption_status()
        assert st.keys == [new] and st.by_key == {new: BLOBS}
    _all_readable(home, database_url)
