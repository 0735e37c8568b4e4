"""Start to ready (not a test): how long `maas serve` with one small model takes to answer /v2/health/ready.

    python bench/start.py [--starts 7] [--source] [NAME=SRC_DIR ...]     # default: this checkout's src/

Each start is a fresh process on a home registered once (the tiny CNN, schema already at head, as on every
start but the first). Each tree is copied and byte-compiled first, as an installed package is (pip compiles at
install time; a checkout under PYTHONDONTWRITEBYTECODE=1 would recompile maas's ~300 modules on every start):
`--source` runs the trees as they are instead, so that each start compiles them. Reported per tree, median
over the starts: the wall time from spawn to the first 200, the CPU time the process had used by then (utime +
stime from /proc, the honest figure on a loaded machine), the same two at the first 200 of `GET /v2` right
after (a route of the FastAPI app, which a tree may build after ready: the whole start's work), and from one
more start under `python -X importtime` the total import time and the slowest top-level imports (imports done
after ready included).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cpu_ab  # noqa: E402
import models  # noqa: E402
import run as bench  # noqa: E402


def one_start(src: Path, home: Path, importtime: bool = False) -> tuple[float, float, float, float, str]:
    """-> wall and CPU seconds at ready, the same at the first answer of a FastAPI route, and stderr."""
    http_port, grpc_port = bench.free_port(), bench.free_port()
    env = {**os.environ, "PYTHONPATH": str(src), "MAAS_HOME": str(home)}
    cmd = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c",
           "from maas.cli.main import app; app()", "serve", "--http-port", str(http_port),
           "--grpc-port", str(grpc_port)]
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed below; not a pipe, which importtime would fill
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
    url = f"http://127.0.0.1:{http_port}/v2/health/ready"
    try:
        with httpx.Client(timeout=1) as client:
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"maas serve exited with {proc.returncode}: {log.read()[-2000:]}")
                try:
                    if client.get(url).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.01)
            wall = time.perf_counter() - started
            cpu = cpu_ab.cpu_seconds(proc.pid)
            while client.get(f"http://127.0.0.1:{http_port}/v2", timeout=60).status_code != 200:
                time.sleep(0.01)
            wall_all = time.perf_counter() - started
            cpu_all = cpu_ab.cpu_seconds(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
        log.seek(0)
        err = log.read()
        log.close()
    return wall, cpu, wall_all, cpu_all, err


def top_imports(stderr: str, n: int = 8) -> tuple[float, list[tuple[str, float]]]:
    """Total import time (the top-level entries' cumulative times) and the slowest top-level imports."""
    top = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, cumulative, name = line[len("import time:"):].split("|")
        if not name.startswith("  "):  # depth 0: one leading space
            top.append((name.strip(), int(cumulative) / 1e6))
    return sum(t for _, t in top), sorted(top, key=lambda x: -x[1])[:n]


def compiled_copy(src: Path, dest: Path) -> Path:
    """`src` copied to `dest` without its bytecode, then byte-compiled there (the tree itself is left alone)."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(dest)], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return dest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trees", nargs="*", default=[f"branch={HERE.parent / 'src'}"], help="NAME=SRC_DIR")
    ap.add_argument("--starts", type=int, default=7)
    ap.add_argument("--source", action="store_true", help="run the trees as they are (compiled at each start)")
    args = ap.parse_args()
    trees = [(n, Path(p).resolve()) for n, p in (t.split("=", 1) for t in args.trees)]
    work = Path(tempfile.mkdtemp(prefix="maas-start-"))
    load = os.getloadavg()
    try:
        if not args.source:
            trees = [(name, compiled_copy(src, work / "trees" / name)) for name, src in trees]
        onnx = work / "cnn.onnx"
        onnx.write_bytes(models.build()["cnn"][0])
        homes = {}
        for name, src in trees:
            homes[name] = work / name
            env = {**os.environ, "PYTHONPATH": str(src), "MAAS_HOME": str(homes[name])}
            subprocess.run([sys.executable, "-c", cpu_ab.REGISTER, str(homes[name]), str(onnx),
                            json.dumps(bench.SERVER_CONFIG["cnn"])], env=env, check=True)
            one_start(src, homes[name])  # the first start of a home may still migrate; not counted
        runs: dict[str, list[tuple[float, float, float, float]]] = {n: [] for n, _ in trees}
        for _ in range(args.starts):  # trees alternate, so the machine's drift falls on each alike
            for name, src in trees:
                runs[name].append(one_start(src, homes[name])[:4])
        mode = "as they are (compiled at each start)" if args.source else "byte-compiled"
        print(f"load average {load[0]:.2f} → {os.getloadavg()[0]:.2f}; median of {args.starts} starts; trees "
              f"{mode}\n")
        print("| tree | wall to ready s | CPU to ready s | wall to GET /v2 s | CPU to GET /v2 s | imports s | "
              "slowest top-level imports |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for name, src in trees:
            *_, err = one_start(src, homes[name], importtime=True)
            total, top = top_imports(err)
            slow = ", ".join(f"{m} {t:.2f}" for m, t in top[:5])
            medians = " | ".join(f"{statistics.median(r[i] for r in runs[name]):.2f}" for i in range(4))
            print(f"| {name} | {medians} | {total:.2f} | {slow} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
