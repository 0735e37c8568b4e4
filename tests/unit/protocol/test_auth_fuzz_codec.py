"""The atheris target on the REST body codec and the raw tensor parser, for a bounded time: no input makes
them raise anything but InvalidArgument, crash, hang or balloon memory."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

atheris = pytest.importorskip("atheris")

TARGET = Path(__file__).parents[2] / "fuzz" / "rest_body_target.py"
SECONDS = 15
GROWTH_MB = 2048  # how far the fuzzed process may grow before libFuzzer calls it out-of-memory
SEEDS = [
    b'{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}',
    b'{"inputs":[{"name":"s","datatype":"BYTES","shape":[2],"data":["a","bc"]}],"outputs":[{"name":"y"}]}',
    b'\x00{"inputs":[{"name":"x","datatype":"INT32","shape":[2],"parameters":{"binary_data_size":8}}]}'
    b"\x01\x00\x00\x00\x02\x00\x00\x00",
]


def test_codec_survives_the_fuzzer(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, seed in enumerate(SEEDS):
        (corpus / f"seed{i}").write_bytes(b"\x00" + seed)  # first byte: the target's mode (raw body)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    # libFuzzer checks the *peak* RSS, and Linux carries a forking parent's peak over into the child (a whole
    # suite's pytest process holds GBs by now): the limit is that inherited peak plus the growth allowed.
    inherited_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    result = subprocess.run(
        [sys.executable, str(TARGET), str(corpus), f"-max_total_time={SECONDS}",
         f"-rss_limit_mb={inherited_mb + GROWTH_MB}",
         "-timeout=10", f"-artifact_prefix={tmp_path}/", "-print_final_stats=1"],
        env=env, capture_output=True, text=True, timeout=SECONDS + 90,
    )
    tail = result.stderr[-3000:]
    assert result.returncode == 0, tail
    assert "Done" in tail and not list(tmp_path.glob("crash-*")), tail
