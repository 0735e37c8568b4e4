"""maas on Ray Serve vs single-process `maas serve`, the same models at the same concurrency, in the same run
(not a test, not run in CI). See docs/scaling.md.

Both servers run side by side on one node (this machine) from one registry; the cells alternate (single, Ray,
single, Ray, …) so that load from other work on the machine falls on both arms alike. Besides requests/s it
reads the CPU seconds each process (and each Ray process kind) spent per request: where the time goes.

    python bench/ray_vs_single.py [--duration 8] [--rounds 2] [--models cnn,resnet18] [--protocols rest-binary,grpc]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "src"))

import models  # noqa: E402
import run as bench  # noqa: E402  (bench/run.py: bodies, load generators, server start)


def start_ray_server(home: Path, log_path: Path, cpus: int, names: list[str], extra: list[str] | None = None,
                     ) -> tuple[subprocess.Popen[bytes], int, int]:
    """`maas serve --ray local` (a one-node Ray inside the server's process): one replica per model with the
    same threads, instances and batching as the single-process server, the ingress taking no reserved CPU."""
    http_port, grpc_port = bench.free_port(), bench.free_port()
    env = {**os.environ, "MAAS_HOME": str(home), "PYTHONPATH": str(ROOT / "src"), "MAAS_RAY_INGRESS_CPUS": "0",
           "MAAS_INFERENCE_THREADS": str(cpus)}
    sets = [x for name in names for x in ("--set", f"{name}.num_cpus={cpus / 2}")]
    sets += [x for item in extra or () for x in ("--set", item)]
    cmd = [sys.executable, "-c", "from maas.cli.main import app; app()", "serve", "--ray", "local",
           "--http-port", str(http_port), "--grpc-port", str(grpc_port), *sets]
    proc = bench._launch("maas serve --ray", cmd, env, f"http://127.0.0.1:{http_port}/v2/health/ready", log_path)
    deadline = time.monotonic() + 120  # the proxy answers health before the ingress's gRPC port is up
    while "maas ready:" not in log_path.read_text(errors="replace"):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"maas serve --ray did not become ready; see {log_path}")
        time.sleep(0.3)
    return proc, http_port, grpc_port


def process_kind(proc: Any) -> str:
    """A stable name for a process (Ray renames a worker to the method it is running: `ray::X.method`)."""
    try:
        cmd = proc.cmdline()
    except Exception:
        return "?"
    text = " ".join(cmd)
    if text.startswith("ray::"):
        name = text.split()[0].removeprefix("ray::").replace("ServeReplica:maas:", "replica ")
        return name.split(".")[0]
    for name in ("raylet", "gcs_server", "log_monitor", "dashboard", "monitor.py", "runtime_env"):
        if name in text:
            return name
    return "server (driver)" if "maas.cli" in text else os.path.basename(cmd[0]) if cmd else "?"


def cpu_by_pid(root_pid: int) -> dict[int, tuple[str, float]]:
    """pid -> (kind, CPU seconds so far, user + system) of the server process and all its descendants."""
    import psutil

    try:
        root = psutil.Process(root_pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    out = {}
    for p in procs:
        try:
            t = p.cpu_times()
            out[p.pid] = (process_kind(p), t.user + t.system)
        except psutil.NoSuchProcess:
            pass
    return out


def served(http_port: int, model: str) -> float:
    """The server's own count of answered requests for `model` (the ingress's, on Ray): CPU is divided by every
    request served while it was measured, the load generator's warm-up included."""
    import re

    import httpx

    text = httpx.get(f"http://127.0.0.1:{http_port}/metrics", timeout=30).text
    pattern = r'maas_inference_requests_total\{model="' + re.escape(model) + r'",outcome="ok"[^}]*\} (\S+)'
    return sum(float(m.group(1)) for m in re.finditer(pattern, text))


def measure_cell(arm: str, pid: int, model: str, proto: str, b: dict, http_port: int, grpc_port: int,
                 concurrency: int, seconds: float, work: Path) -> dict:
    body, hlen = b[proto]
    count = served(http_port, model)
    before = cpu_by_pid(pid)
    load = os.getloadavg()[0]
    r = bench.measure(model, proto, body, hlen, http_port, grpc_port, concurrency, seconds, work)
    after = cpu_by_pid(pid)
    ok = max(1.0, served(http_port, model) - count)
    r["ok_rps"] = r["rps"]  # both load generators count answered requests only, in their measured window
    cpu: dict[str, float] = defaultdict(float)
    for p, (kind, seconds_now) in after.items():
        cpu[kind] += (seconds_now - before.get(p, (kind, 0.0))[1]) * 1e3 / ok
    r.update(arm=arm, model=model, protocol=proto, concurrency=concurrency, load1=load,
             cpu_ms_per_request={k: round(v, 3) for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]) if v > 0.001})
    print(f"  {arm:6} {model:9} {proto:11} c={concurrency} {r['ok_rps']:8.1f} req/s errors {r['errors']} "
          f"load {load:.1f} cpu/req {sum(cpu.values()):.2f} ms", flush=True)
    return r


def render(rows: list[dict], args: argparse.Namespace, load_before: tuple, load_after: tuple) -> str:
    lines = ["# maas on Ray Serve vs single-process maas (bench/ray_vs_single.py)", "",
             f"Machine: {bench.machine()}; load average before {load_before[0]:.2f}/{load_before[1]:.2f}, "
             f"after {load_after[0]:.2f}/{load_after[1]:.2f}. Cells of {args.duration:g} s, {args.rounds} rounds, "
             f"arms interleaved; concurrency {args.concurrency}.", "",
             "| model | protocol | single ok req/s | Ray ok req/s | Ray/single | single CPU ms/req | Ray CPU ms/req |",
             "|---|---|---:|---:|---:|---:|---:|"]
    by: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for r in rows:
        by[(r["model"], r["protocol"], r["arm"])].append(r)
    keys = sorted({(m, p) for m, p, _ in by})
    for model, proto in keys:
        single, ray = by[(model, proto, "single")], by[(model, proto, "ray")]
        s = sum(r["ok_rps"] for r in single) / len(single)
        y = sum(r["ok_rps"] for r in ray) / len(ray)
        sc = sum(sum(r["cpu_ms_per_request"].values()) for r in single) / len(single)
        yc = sum(sum(r["cpu_ms_per_request"].values()) for r in ray) / len(ray)
        lines.append(f"| {model} | {proto} | {s:,.1f} | {y:,.1f} | {y / s:.2f} | {sc:.2f} | {yc:.2f} |")
    lines += ["", "CPU ms per request by process (Ray arm, last round):", ""]
    for model, proto in keys:
        last = by[(model, proto, "ray")][-1]["cpu_ms_per_request"]
        lines.append(f"- {model} {proto}: " + ", ".join(f"{k} {v:.2f}" for k, v in last.items()))
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per measured cell")
    ap.add_argument("--rounds", type=int, default=2, help="times each (model, protocol) pair runs per arm")
    ap.add_argument("--models", default="cnn,resnet18")
    ap.add_argument("--protocols", default="rest-binary,grpc")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--ray-set", action="append", default=[], metavar="NAME.KEY=VALUE",
                    help="more --set for the Ray server, e.g. cnn.max_calls=1000000 (no grouping of handle calls)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "ray_vs_single.md")
    args = ap.parse_args()
    names = [m for m in args.models.split(",") if m]
    protocols = [p for p in args.protocols.split(",") if p]
    cpus = len(os.sched_getaffinity(0))
    # Both arms queue rather than shed (429) under a loaded machine: the cells compare throughput.
    os.environ["MAAS_MAX_QUEUE_WAIT_MS"] = "30000"
    load_before = os.getloadavg()
    print("building models ...", flush=True)
    built = {k: v for k, v in models.build().items() if k in names}
    work = Path(tempfile.mkdtemp(prefix="maas-bench-ray-"))
    bench.register(work / "home", built)
    rng = np.random.default_rng(1)
    bodies: dict[str, dict] = {}
    from maas.protocol.grpc_gen import inference_pb2 as pb

    for name, (_, row_shape) in built.items():
        b = bench.bodies(rng.random((1, *row_shape), dtype=np.float32))
        msg = pb.ModelInferRequest.FromString(b["grpc"][0])
        msg.model_name = name
        b["grpc"] = (msg.SerializeToString(), None)
        bodies[name] = b
    rows: list[dict] = []
    single = ray = None
    try:
        single, s_http, s_grpc = bench.start_server(work / "home", work / "single.log")
        ray, r_http, r_grpc = start_ray_server(work / "home", work / "ray.log", cpus, names, args.ray_set)
        arms = {"single": (single.pid, s_http, s_grpc), "ray": (ray.pid, r_http, r_grpc)}
        for name in names:
            for port_http, port_grpc in ((s_http, s_grpc), (r_http, r_grpc)):
                bench.check_answers(name, port_http, port_grpc, bodies[name])
        for _ in range(args.rounds):
            for name in names:
                for proto in protocols:
                    for arm, (pid, http_port, grpc_port) in arms.items():
                        rows.append(measure_cell(arm, pid, name, proto, bodies[name], http_port, grpc_port,
                                                 args.concurrency, args.duration, work))
    finally:
        for proc in (p for p in (ray, single) if p is not None):
            proc.send_signal(signal.SIGINT if proc is ray else signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    report = render(rows, args, load_before, os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    print("\n" + report + f"written to {args.out}; logs in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
