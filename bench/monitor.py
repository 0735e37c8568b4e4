"""What monitoring costs the tiny CNN (not a test, not run in CI): REST binary throughput at concurrency 32
with prediction logging off, at 1% and at 100% (targets: <= 2% and <= 10% cost), in the same run, rounds
interleaved so the shared machine's drift hits every arm alike. With `--baseline-src DIR` (the `src/` of an
older checkout, e.g. `git archive <commit> src | tar -x -C /tmp/base`) the same model is also served by that
code, which prices the statistics counters on the hot path.

    python bench/monitor.py [--duration 10] [--rounds 3] [--concurrency 32] [--baseline-src /tmp/base/src]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "src"))

import models  # noqa: E402
import run  # noqa: E402

ARMS = {"off": 0.0, "log-1%": 0.01, "log-100%": 1.0}


def start(home: Path, src: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    http_port, grpc_port = run.free_port(), run.free_port()
    env = {**os.environ, "MAAS_HOME": str(home), "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-c", "from maas.cli.main import app; app()", "serve",
           "--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    proc = run._launch("maas serve", cmd, env, f"http://127.0.0.1:{http_port}/v2/health/ready", log_path)
    return proc, http_port


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--baseline-src", type=Path, default=None)
    args = p.parse_args()

    import torch

    torch.manual_seed(0)
    onnx_bytes = models._export(models.MnistCnn(), torch.rand(1, 28, 28, 1))
    from maas.config import Settings
    from maas.registry import Registry

    work = Path(tempfile.mkdtemp(prefix="maas-bench-monitor-"))
    home = work / "home"
    with Registry(Settings(home=home)) as reg:
        for arm, rate in ARMS.items():
            name = f"cnn-{arm.replace('%', 'pct')}"
            reg.publish(name, {"model.onnx": onnx_bytes}, config={**run.SERVER_CONFIG["cnn"], "log_sample_rate": rate})
    x = np.random.default_rng(0).random((1, 28, 28, 1), dtype=np.float32)
    body, header_len = run.bodies(x)["rest-binary"]
    body_path = work / "body.bin"
    body_path.write_bytes(body)

    servers = {"this": ROOT / "src"} | ({"baseline": args.baseline_src} if args.baseline_src else {})
    results: dict[str, list[float]] = {}
    procs = {}
    try:
        for label, src in servers.items():
            procs[label] = start(home if label == "this" else work / "base-home", src, work / f"{label}.log")
        if "baseline" in servers:
            with Registry(Settings(home=work / "base-home")) as reg:  # the old code ignores log_sample_rate
                reg.publish("cnn-off", {"model.onnx": onnx_bytes}, config=run.SERVER_CONFIG["cnn"])
            time.sleep(2)  # its registry poll picks the model up
        cells = [("this", f"cnn-{a.replace('%', 'pct')}", a) for a in ARMS]
        if "baseline" in servers:
            cells.append(("baseline", "cnn-off", "baseline (before monitor)"))
        for _ in range(args.rounds):
            for label, model, arm in cells:
                url = f"http://127.0.0.1:{procs[label][1]}/v2/models/{model}/infer"
                run.run_wrk(url, body_path, header_len, args.concurrency, 2)  # warm-up
                r = run.run_wrk(url, body_path, header_len, args.concurrency, args.duration)
                assert r["errors"] == 0, r
                results.setdefault(arm, []).append(r["rps"])
    finally:
        for proc, _ in procs.values():
            run.stop_server(proc)
    logged = sorted((home / "predictions").rglob("*.parquet"))
    off = statistics.median(results["off"])
    table = {arm: {"median_rps": statistics.median(v), "runs": [round(x) for x in v],
                   "cost_vs_off": 1 - statistics.median(v) / off} for arm, v in results.items()}
    print(json.dumps({"concurrency": args.concurrency, "duration_s": args.duration, "rounds": args.rounds,
                      "parquet_files": len(logged), "load_avg": os.getloadavg(), "arms": table}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
