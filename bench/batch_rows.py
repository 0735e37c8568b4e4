"""What a batch's size costs (not a test): the tiny CNN served plainly with max_batch_size 32, 12 and 6, REST
binary with wrk at concurrency 32, rounds rotated; per cell the server's CPU time per request (/proc) and the
rows per executed batch (/metrics). The control for bench/traffic.py: a two-arm split halves the rows per
batch, and this shows what the same rows per batch cost with no split at all.

    python bench/batch_rows.py [--sizes 32,12,6] [--rounds 4] [--duration 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import models  # noqa: E402
import monitor  # noqa: E402
import run as bench  # noqa: E402
from traffic import rows_per_batch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="32,12,6")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--duration", type=float, default=4.0)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    from maas.config import Settings
    from maas.registry import Registry

    onnx_bytes, row_shape = models.build()["cnn"]
    x = np.random.default_rng(0).random((1, *row_shape), dtype=np.float32)
    home = Path(tempfile.mkdtemp(prefix="maas-bench-rows-"))
    with Registry(Settings(home=home)) as reg:
        for size in sizes:
            reg.publish(f"m{size}", {"model.onnx": onnx_bytes},
                        config={**bench.SERVER_CONFIG["cnn"], "max_batch_size": size})
    proc, http_port, _ = bench.start_server(home, home / "server.log")
    body, content = bench.bodies(x)["rest-binary"]
    path = home / "body"
    path.write_bytes(body)
    cells: dict[int, list[tuple[float, float, float]]] = {size: [] for size in sizes}
    loads = [os.getloadavg()[0]]
    try:
        for i in range(args.rounds):
            for size in sizes[i % len(sizes):] + sizes[:i % len(sizes)]:
                name = f"m{size}"
                rows0, batches0 = rows_per_batch(http_port, name)
                before = monitor.cpu_seconds(proc.pid)
                r = bench.run_wrk(f"http://127.0.0.1:{http_port}/v2/models/{name}/infer", path, content, 32,
                                  args.duration)
                cpu_us = (monitor.cpu_seconds(proc.pid) - before) / max(r["requests"], 1) * 1e6
                rows1, batches1 = rows_per_batch(http_port, name)
                cells[size].append((cpu_us, r["rps"], (rows1 - rows0) / max(batches1 - batches0, 1)))
            loads.append(os.getloadavg()[0])
    finally:
        bench.stop_server(proc)
    print(f"tiny CNN, REST binary, c=32, {args.rounds} rounds x {args.duration:g} s, medians; "
          f"load average {min(loads):.1f}-{max(loads):.1f}")
    print(f"{'max_batch_size':>14} {'CPU us/req':>10} {'req/s':>8} {'rows/batch':>10}  CPU per round")
    for size, rs in cells.items():
        cpu, rps, rows = (statistics.median(cell[k] for cell in rs) for k in range(3))
        print(f"{size:>14} {cpu:>10.0f} {rps:>8.0f} {rows:>10.1f}  {[round(c) for c, _, _ in rs]}")


if __name__ == "__main__":
    main()
