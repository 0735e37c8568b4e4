"""What monitoring costs the tiny CNN (not a test, not run in CI): REST binary at concurrency 32 with
prediction logging off, at 1% and at 100% (targets: <= 2% and <= 10% cost), in the same run, rounds
interleaved so the shared machine's drift hits every arm alike. The main figure is the server process's
CPU time per request (user + system from /proc, the log writer thread included: each run is followed by a
pause for the writer to flush), which a loaded machine disturbs far less than throughput; throughput
ratios and the load average are reported beside it. With `--baseline-src DIR` (the `src/` of an
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
FLUSH_PAUSE_S = 1.5  # the log writer flushes every second: its work for a run is counted with that run


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    cpu_us: dict[str, list[float]] = {}
    loads: list[float] = []
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
        for i in range(args.rounds):
            for label, model, arm in cells[i % len(cells):] + cells[:i % len(cells)]:  # order rotated per round
                url = f"http://127.0.0.1:{procs[label][1]}/v2/models/{model}/infer"
                run.run_wrk(url, body_path, header_len, args.concurrency, 2)  # warm-up
                time.sleep(FLUSH_PAUSE_S)
                pid = procs[label][0].pid
                before = cpu_seconds(pid)
                r = run.run_wrk(url, body_path, header_len, args.concurrency, args.duration)
                time.sleep(FLUSH_PAUSE_S)
                spent = cpu_seconds(pid) - before
                assert r["errors"] == 0, r
                results.setdefault(arm, []).append(r["rps"])
                cpu_us.setdefault(arm, []).append(spent / r["requests"] * 1e6)
                loads.append(os.getloadavg()[0])
    finally:
        for proc, _ in procs.values():
            run.stop_server(proc)
    logged = sorted((home / "predictions").rglob("*.parquet"))
    off = statistics.median(results["off"])
    off_cpu = statistics.median(cpu_us["off"])
    table = {arm: {"cpu_us_per_request": round(statistics.median(cpu_us[arm]), 1),
                   "cpu_cost_vs_off": round(statistics.median(cpu_us[arm]) / off_cpu - 1, 4),
                   "cpu_runs": [round(x, 1) for x in cpu_us[arm]],
                   # each round's cell against the same round's off cell: follows the machine's drift less
                   "cpu_paired_cost_vs_off": round(statistics.median(
                       a / b for a, b in zip(cpu_us[arm], cpu_us["off"], strict=True)) - 1, 4),
                   "throughput_paired_cost_vs_off": round(1 - statistics.median(
                       a / b for a, b in zip(v, results["off"], strict=True)), 4),
                   "median_rps": round(statistics.median(v)), "runs": [round(x) for x in v],
                   "throughput_cost_vs_off": round(1 - statistics.median(v) / off, 4)} for arm, v in results.items()}
    print(json.dumps({"concurrency": args.concurrency, "duration_s": args.duration, "rounds": args.rounds,
                      "parquet_files": len(logged), "load_avg_during_runs": [round(x, 1) for x in loads],
                      "arms": table}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
