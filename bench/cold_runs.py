"""What one onnxruntime run costs right after another against after a pause (not a test): the machine's share of a
batch's cost, which no scheduling in maas removes.

    python bench/cold_runs.py [--model cnn|resnet18] [--rows 32] [--runs 300]

One single-threaded session (as maas gives a small model) runs the same batch back to back, then after each of a
few pauses (sleeping, or spinning in Python so the core never idles), then back to back while another thread of
the process runs pure Python (the event loop's position: the run must win the GIL back after onnxruntime
releases it). It prints the CPU time of a run (the thread's own clock, so waiting is not counted) for each case.
On the shared 2-core VM this was written on, a pause of 1-5 ms made the next 32-row run of the tiny CNN cost
1.2-3.7x a back-to-back one (spinning too, less so on a quiet machine), and a busy Python thread 1.9x. A server
pays that on every batch whose instance waited for work, so fewer, larger batches cost less per row.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import models  # noqa: E402
import run as bench  # noqa: E402


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def cpu_per_run(session: object, x: np.ndarray, runs: int, pause: object = None) -> float:
    """Mean thread CPU seconds of one run, with `pause()` before each (untimed)."""
    for _ in range(10):
        session.run(None, {"input": x})  # type: ignore[attr-defined]
    total = 0.0
    for _ in range(runs):
        if pause is not None:
            pause()  # type: ignore[operator]
        started = time.thread_time()
        session.run(None, {"input": x})  # type: ignore[attr-defined]
        total += time.thread_time() - started
    return total / runs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="cnn", choices=("cnn", "resnet18"))
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--runs", type=int, default=300)
    args = ap.parse_args()
    onnx_bytes, row_shape = models.build()[args.model]
    session = bench._session(onnx_bytes, 1)
    x = np.random.default_rng(0).random((args.rows, *row_shape), dtype=np.float32)
    cases: list[tuple[str, object]] = [("back to back", None)]
    for ms in (0.2, 1.0, 5.0):
        cases.append((f"after sleeping {ms:g} ms", lambda s=ms / 1e3: time.sleep(s)))
        cases.append((f"after spinning {ms:g} ms", lambda s=ms / 1e3: _spin(s)))
    base = None
    print(f"{args.model}, {args.rows} rows a run, one intra-op thread, {args.runs} runs a case")
    for name, pause in cases + [("back to back, again", None)]:
        cost = cpu_per_run(session, x, args.runs, pause)
        base = base or cost
        print(f"  {name:28} {cost * 1e6:9.0f} µs CPU a run  ({cost / base:.2f}x)", flush=True)
    stop = threading.Event()

    def python_loop() -> None:  # holds the GIL but for the interpreter's forced switches
        while not stop.is_set():
            pass

    busy = threading.Thread(target=python_loop, daemon=True)
    busy.start()
    cost = cpu_per_run(session, x, args.runs)
    stop.set()
    busy.join()
    print(f"  {'with a busy Python thread':28} {cost * 1e6:9.0f} µs CPU a run  ({cost / base:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
