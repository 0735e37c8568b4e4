"""maas serving benchmark (not a test, not run in CI): raw onnxruntime vs `maas serve` over REST JSON, REST binary
and gRPC at a few concurrencies, on a tiny CNN and a ResNet-18-shaped network. See bench/README.md.

    python bench/run.py [--duration 10] [--models cnn,resnet18] [--concurrency 1,8,32]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "src"))

import floor_servers  # noqa: E402
import grpc_load  # noqa: E402
import models  # noqa: E402

# How the server runs each model (the version's `config`): batching only. Sessions and threads are maas's
# default (serving/adaptive.py: chosen at load by timing the model), which is what issue #19 measures.
SERVER_CONFIG: dict[str, dict[str, Any]] = {
    "cnn": {"max_batch_size": 32, "batching": {"max_queue_delay_us": 200}},
    "resnet18": {"max_batch_size": 8, "batching": {"max_queue_delay_us": 2000}},
}
# PyTriton's instance count per model (it has no adaptive layout): the layouts maas used to be given by hand.
PEER_INSTANCES = {"cnn": 1, "resnet18": 2}
RAW_BATCHES = {"cnn": (1, 8, 32, 64), "resnet18": (1, 4, 8)}


# --- raw onnxruntime ----------------------------------------------------------------------------------------


def _session(onnx_bytes: bytes, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_bytes, sess_options=opts, providers=["CPUExecutionProvider"])


def _rows_per_s(sessions: list[Any], x: np.ndarray, seconds: float) -> float:
    """Rows/s with one Python thread per session, each running `x` in a loop (onnxruntime drops the GIL)."""
    counts = [0] * len(sessions)
    stop = time.perf_counter() + seconds

    def loop(i: int) -> None:
        sessions[i].run(None, {"input": x})  # warm
        while time.perf_counter() < stop:
            sessions[i].run(None, {"input": x})
            counts[i] += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(len(sessions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) * x.shape[0] / (time.perf_counter() - start)


def _p50_ms(sess: Any, one: np.ndarray, seconds: float) -> float:
    """The median latency of one-row runs made back to back for `seconds` (at least 5), after 5 to warm up."""
    for _ in range(5):
        sess.run(None, {"input": one})
    samples = []
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop or len(samples) < 5:
        t0 = time.perf_counter()
        sess.run(None, {"input": one})
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e3


def raw_onnxruntime(name: str, onnx_bytes: bytes, row_shape: tuple[int, ...], cores: int, seconds: float) -> dict:
    rng = np.random.default_rng(0)
    one = rng.random((1, *row_shape), dtype=np.float32)
    latencies = {threads: _p50_ms(_session(onnx_bytes, threads), one, seconds) for threads in sorted({1, cores})}
    best_latency_threads = min(latencies, key=latencies.__getitem__)
    layouts = [(1, cores)] + ([(cores, 1)] if cores > 1 else [])  # (sessions, intra-op threads each)
    throughput = []
    for sessions_n, threads in layouts:
        sessions = [_session(onnx_bytes, threads) for _ in range(sessions_n)]
        for batch in RAW_BATCHES[name]:
            x = rng.random((batch, *row_shape), dtype=np.float32)
            throughput.append(
                {"sessions": sessions_n, "threads": threads, "batch": batch,
                 "rows_per_s": _rows_per_s(sessions, x, seconds)}
            )
    best = max(throughput, key=lambda r: r["rows_per_s"])
    return {"p50_ms_batch1": latencies[best_latency_threads], "p50_threads": best_latency_threads,
            "latency_by_threads": latencies, "throughput": throughput, "best": best}


def raw_again(onnx_bytes: bytes, row_shape: tuple[int, ...], raw: dict, seconds: float) -> tuple[float, float]:
    """Raw onnxruntime's best cell (same sessions, threads and batch) and its batch-1 p50 (same threads) measured
    again right after a server's cells: this machine's speed drifts by ±20 % within a run, so a ratio taken next
    to its cells is the one to read."""
    best = raw["best"]
    sessions = [_session(onnx_bytes, best["threads"]) for _ in range(best["sessions"])]
    rng = np.random.default_rng(0)
    x = rng.random((best["batch"], *row_shape), dtype=np.float32)
    one = rng.random((1, *row_shape), dtype=np.float32)
    return _rows_per_s(sessions, x, seconds), _p50_ms(_session(onnx_bytes, raw["p50_threads"]), one, seconds)


# --- the server ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


REGISTER = r'''
import json, sys
from pathlib import Path
from maas.config import Settings
from maas.registry import Registry
with Registry(Settings(home=Path(sys.argv[1]))) as reg:
    for name, (path, config) in json.loads(sys.argv[2]).items():
        reg.publish(name, {"model.onnx": Path(path).read_bytes()}, config=config)
'''


def register(home: Path, built: dict[str, tuple[bytes, tuple[int, ...]]], src: Path = ROOT / "src") -> None:
    """Publish the models in `home` with the code of the tree at `src` (each tree writes its own schema)."""
    models_ = {}
    for name, (onnx_bytes, _) in built.items():
        path = home.parent / f"{home.name}-{name}.onnx"
        path.write_bytes(onnx_bytes)
        models_[name] = (str(path), SERVER_CONFIG[name])
    env = {**os.environ, "PYTHONPATH": str(src)}
    subprocess.run([sys.executable, "-c", REGISTER, str(home), json.dumps(models_)], env=env, check=True)


def _launch(what: str, cmd: list[str], env: dict[str, str] | None, ready_url: str,
            log_path: Path) -> subprocess.Popen[bytes]:
    """Start a server process with its output in `log_path`; return once `ready_url` answers 200."""
    import httpx

    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see {log_path}")
        try:
            if httpx.get(ready_url, timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise TimeoutError(f"{what} did not become ready; see {log_path}")


def start_server(home: Path, log_path: Path, src: Path = ROOT / "src") -> tuple[subprocess.Popen[bytes], int, int]:
    http_port, grpc_port = free_port(), free_port()
    # Capacity cells measure throughput, not admission: with #18's default 500 ms queue-wait bound a c=32 ResNet
    # queue (about 1 s deep here) would be partly shed. MAAS_MAX_QUEUE_WAIT_MS in the environment still wins.
    env = {"MAAS_MAX_QUEUE_WAIT_MS": "60000", **os.environ, "MAAS_HOME": str(home), "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-c", "from maas.cli.main import app; app()", "serve",
           "--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    proc = _launch("maas serve", cmd, env, f"http://127.0.0.1:{http_port}/v2/health/ready", log_path)
    return proc, http_port, grpc_port


def start_peer(python: str, name: str, onnx_path: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], int, int]:
    """PyTriton serving `onnx_path` as `name` with the model's SERVER_CONFIG batching (peer_pytriton.py)."""
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    cfg = SERVER_CONFIG[name]
    cmd = [python, str(HERE / "peer_pytriton.py"), str(onnx_path), name, str(http_port), str(grpc_port),
           str(metrics_port), str(cfg["max_batch_size"]), str(cfg["batching"]["max_queue_delay_us"]),
           str(PEER_INSTANCES[name])]
    proc = _launch("PyTriton", cmd, None, f"http://127.0.0.1:{http_port}/v2/models/{name}/ready", log_path)
    return proc, http_port, grpc_port


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


# --- request bodies -----------------------------------------------------------------------------------------


def bodies(x: np.ndarray) -> dict[str, tuple[bytes, int | None]]:
    """protocol -> (body, Inference-Header-Content-Length or None)."""
    shape = list(x.shape)
    doc = {"inputs": [{"name": "input", "shape": shape, "datatype": "FP32", "data": x.ravel().tolist()}]}
    json_body = json.dumps(doc, separators=(",", ":")).encode()
    header = json.dumps(
        {"inputs": [{"name": "input", "shape": shape, "datatype": "FP32",
                     "parameters": {"binary_data_size": x.nbytes}}],
         "outputs": [{"name": "output", "parameters": {"binary_data": True}}]},
        separators=(",", ":"),
    ).encode()
    from maas.protocol.grpc_gen import inference_pb2 as pb

    msg = pb.ModelInferRequest(model_name="", inputs=[pb.ModelInferRequest.InferInputTensor(
        name="input", datatype="FP32", shape=shape)], raw_input_contents=[x.tobytes()])
    return {"rest-json": (json_body, None), "rest-binary": (header + x.tobytes(), len(header)),
            "grpc": (msg.SerializeToString(), None)}


def check_answers(model: str, http_port: int, grpc_port: int, bodies_: dict[str, tuple[bytes, int | None]]) -> int:
    """One request per protocol, checked, so a cell never measures a stream of errors; returns the size of the
    gRPC answer (for h2load's count of good answers)."""
    import grpc
    import httpx

    from maas.protocol.grpc_gen import inference_pb2 as pb

    url = f"http://127.0.0.1:{http_port}/v2/models/{model}/infer"
    for proto in ("rest-json", "rest-binary"):
        body, hlen = bodies_[proto]
        headers = {"Inference-Header-Content-Length": str(hlen)} if hlen is not None else {}
        r = httpx.post(url, content=body, headers=headers, timeout=120)
        if r.status_code != 200:
            raise RuntimeError(f"{model} {proto}: HTTP {r.status_code}: {r.text[:300]}")
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}", options=[("grpc.max_send_message_length", -1)]) as ch:
        raw = ch.unary_unary(grpc_load.METHOD)(bodies_["grpc"][0], timeout=120)
        resp = pb.ModelInferResponse.FromString(raw)
        if not resp.raw_output_contents:
            raise RuntimeError(f"{model} grpc: no outputs")
        return len(raw)


def measure_h2load(model: str, body: bytes, answer_bytes: int, port: int, levels: list[int], seconds: float,
                   work: Path) -> list[dict]:
    path = work / f"{model}-grpc.frame"
    path.write_bytes(grpc_frame(body))
    url = f"http://127.0.0.1:{port}{grpc_load.METHOD}"
    run_h2load(url, path, answer_bytes, max(levels), 2)  # warm-up
    rows = []
    for c in levels:
        r = run_h2load(url, path, answer_bytes, c, seconds)
        r.update(model=model, protocol="grpc (h2load)", concurrency=c)
        rows.append(r)
        print(f"  {model:9} grpc/h2load c={c:<3} {r['rps']:9,.0f} req/s  mean {r['mean_ms']:7.2f} ms  "
              f"errors {r['errors']}", flush=True)
    return rows


def run_wrk(url: str, body_path: Path, header_len: int | None, concurrency: int, seconds: float) -> dict:
    hlen = "" if header_len is None else str(header_len)
    env = {**os.environ, "BENCH_BODY": str(body_path), "BENCH_HEADER_LEN": hlen}
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "60s",
           "-s", str(HERE / "infer.lua"), url]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    line = next(s for s in out.splitlines() if s.startswith("BENCH_JSON "))
    r = json.loads(line[len("BENCH_JSON "):])
    errors = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["status_errors"] + r["timeouts"]
    answered = r["requests"] - r["status_errors"]  # a 429 is no throughput
    return {"requests": r["requests"], "errors": errors, "rps": answered / (r["duration_us"] / 1e6),
            "p50_ms": r["p50_us"] / 1e3, "p99_ms": r["p99_us"] / 1e3}


def run_h2load(url: str, body_path: Path, answer_bytes: int, concurrency: int, seconds: float) -> dict:
    """gRPC driven by nghttp2's h2load (C): the server's capacity without a Python client on the same cores.
    h2load counts HTTP statuses, and a gRPC error is HTTP 200 too, so good answers are counted from the DATA
    bytes received (`answer_bytes` framed, each); it reports mean latency, not percentiles."""
    conns = 1 if concurrency < 8 else 2  # as grpc_load.py: one channel per client process
    cmd = ["h2load", "-D", str(max(1, round(seconds))), "-c", str(conns), "-m", str(max(1, concurrency // conns)),
           "-t", "1", "-H", "content-type: application/grpc", "-H", "te: trailers", "-d", str(body_path), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    import re

    done = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", out)
    counts = re.search(r"(\d+) succeeded, (\d+) failed, (\d+) errored", out)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", out)
    data = re.search(r"\((\d+)\) data", out)
    if not (done and counts and mean and data):
        raise RuntimeError(f"cannot read h2load's output:\n{out}")
    value = mean.group(1)
    mean_ms = float(value[:-2]) / 1e3 if value.endswith("us") else float(value[:-2]) if value.endswith("ms") \
        else float(value[:-1]) * 1e3
    finished = int(counts.group(1))
    answered = int(data.group(1)) // (answer_bytes + 5)
    return {"requests": answered, "errors": finished - answered + int(counts.group(2)) + int(counts.group(3)),
            "rps": float(done.group(2)) * answered / max(finished, 1), "mean_ms": mean_ms}


def grpc_frame(message: bytes) -> bytes:
    """A gRPC message on the wire: uncompressed flag + big-endian length + bytes."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def measure(model: str, proto: str, body: bytes, header_len: int | None, http_port: int, grpc_port: int,
            concurrency: int, seconds: float, work: Path) -> dict:
    if proto == "grpc":
        msg_body = body
        return grpc_load.run(f"127.0.0.1:{grpc_port}", msg_body, concurrency, seconds)
    path = work / f"{model}-{proto}.body"
    path.write_bytes(body)
    url = f"http://127.0.0.1:{http_port}/v2/models/{model}/infer"
    return run_wrk(url, path, header_len, concurrency, seconds)


def measure_floors(b: dict[str, tuple[bytes, int | None]], levels: list[int], seconds: float, work: Path) -> list[dict]:
    """The same load generators against servers that do no work (floor_servers.py), on the tiny CNN's bodies."""
    import grpc

    rows: list[dict] = []
    for kind, protos in (("http", ("rest-json", "rest-binary")), ("grpc", ("grpc",))):
        port = free_port()
        proc = subprocess.Popen([sys.executable, str(HERE / "floor_servers.py"), kind, str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if kind == "http":
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    else:
                        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
                            grpc.channel_ready_future(ch).result(timeout=1)
                    break
                except (OSError, grpc.FutureTimeoutError):
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError(f"the {kind} floor server did not start") from None
                    time.sleep(0.2)
            for proto in protos:
                body, hlen = b[proto]
                measure("floor", proto, body, hlen, port, port, max(levels), 2, work)  # warm-up
                for c in sorted({min(levels), max(levels)}):
                    r = measure("floor", proto, body, hlen, port, port, c, seconds, work)
                    r.update(model="floor", protocol=proto, concurrency=c)
                    rows.append(r)
                    print(f"  floor     {proto:11} c={c:<3} {r['rps']:9,.0f} req/s  p50 {r['p50_ms']:8.2f} ms",
                          flush=True)
            if kind == "grpc" and shutil.which("h2load"):
                rows += measure_h2load("floor", b["grpc"][0], len(floor_servers.ANSWER), port,
                                       sorted({min(levels), max(levels)}), seconds, work)
        finally:
            stop_server(proc)
    return rows


def measure_server(server: str, name: str, b: dict[str, tuple[bytes, int | None]], protocols: list[str],
                   levels: list[int], http_port: int, grpc_port: int, seconds: float, work: Path) -> list[dict]:
    """Every protocol at every concurrency against one server; gRPC again with h2load when it is installed."""
    answer_bytes = check_answers(name, http_port, grpc_port, b)
    rows: list[dict] = []
    for proto in protocols:
        body, hlen = b[proto]
        measure(name, proto, body, hlen, http_port, grpc_port, max(levels), 2, work)  # warm-up
        for c in levels:
            r = measure(name, proto, body, hlen, http_port, grpc_port, c, seconds, work)
            r.update(server=server, model=name, protocol=proto, concurrency=c)
            rows.append(r)
            print(f"  {server:8} {name:9} {proto:11} c={c:<3} {r['rps']:9,.0f} req/s  p50 {r['p50_ms']:8.2f} ms  "
                  f"p99 {r['p99_ms']:8.2f} ms  errors {r['errors']}", flush=True)
    if "grpc" in protocols and shutil.which("h2load"):
        for r in measure_h2load(name, b["grpc"][0], answer_bytes, grpc_port, levels, seconds, work):
            r.update(server=server, protocol="grpc (h2load)")
            rows.append(r)
    return rows


# --- report -------------------------------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import onnxruntime

    return (f"{cpu}, {os.cpu_count()} cores visible, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, onnxruntime {onnxruntime.__version__}")


def busy_processes() -> list[str]:
    """What else used the CPU when the run started (the cores are shared)."""
    out = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu", "--no-headers"], capture_output=True, text=True)
    return [" ".join(line.split()) for line in out.stdout.splitlines()[:6]]


def _after(row: dict) -> str:
    return f"{row['rps'] / row['raw_after']:.0%}" if row.get("raw_after") else "-"


def _around(row: dict, value: str = "rps", raw: str = "raw") -> str:
    """`row[value]` against the mean of the raw figure measured right before and right after the row's server
    (drift cancels): raw best for req/s, raw batch-1 p50 for p50 (`value="p50_ms", raw="p50"`)."""
    before, after = row.get(f"{raw}_before"), row.get(f"{raw}_after")
    if not before or not after:
        return "-"
    ratio = row[value] / ((before + after) / 2)
    return f"{ratio:.0%}" if value == "rps" else f"{ratio:.2f}x"


def render(results: list[dict], raw: dict[str, dict], args: argparse.Namespace, load_before: tuple, load_after: tuple,
           busy: list[str], floors: list[dict], h2rows: list[dict], peers: list[dict]) -> str:
    lines = ["# maas serving benchmark", "",
             f"- Machine: {machine()}",
             f"- Load average before / after the run: {load_before[0]:.2f} / {load_after[0]:.2f} (1 min)",
             f"- Busiest processes at the start: {'; '.join(busy)}",
             f"- {args.duration:g} s per cell after warm-up; REST via `wrk -t1` (Lua body), gRPC via "
             f"{'1-2'} Python processes of raw grpc.aio stubs; load generator and server share the same cores.",
             "", "## Raw onnxruntime (in-process, same cores)", "",
             "| model | batch-1 p50 (ms) | best throughput (rows/s) | at |", "|---|---:|---:|---|"]
    for name, r in raw.items():
        b = r["best"]
        lines.append(f"| {name} | {r['p50_ms_batch1']:.3f} ({r['p50_threads']} thread) | {b['rows_per_s']:,.0f} | "
                     f"{b['sessions']} session(s) x {b['threads']} thread(s), batch {b['batch']} |")
    lines += ["", "## maas serve", "",
              "\"After\" divides by raw onnxruntime's best cell measured again right after that server's cells, "
              "\"around\" by the mean of that and the same cell measured right before them (the machine's speed "
              "drifts within a run); \"p50 ÷ around\" divides by raw batch-1 p50 measured at the same two moments.", "",
              "| tree | model | protocol | concurrency | req/s | p50 (ms) | p99 (ms) | errors | req/s ÷ raw best | "
              "p50 ÷ raw batch-1 | req/s ÷ raw best after | ÷ raw around | p50 ÷ around |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        rb = raw[r["model"]]
        lines.append(
            f"| {r.get('tree', 'maas')} | {r['model']} | {r['protocol']} | {r['concurrency']} | {r['rps']:,.0f} | "
            f"{r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['errors']} | {r['rps'] / rb['best']['rows_per_s']:.0%} | "
            f"{r['p50_ms'] / rb['p50_ms_batch1']:.1f}x | {_after(r)} | {_around(r)} | {_around(r, 'p50_ms', 'p50')} |")
    lines += ["", "Server model configs: " + "; ".join(f"`{k}`: `{json.dumps(v)}`" for k, v in SERVER_CONFIG.items()
                                                      if k in raw), ""]
    if h2rows:
        lines += ["## gRPC driven by h2load (C, HTTP/2), for comparison", "",
                  "The Python gRPC client processes above share the two cores with the server; nghttp2's h2load "
                  "costs far less per call. h2load reports mean latency, not percentiles.", "",
                  "| tree | model | concurrency | req/s | mean (ms) | errors | req/s ÷ raw best | ÷ raw best after | "
                  "÷ raw around |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r.get('tree', 'maas')} | {r['model']} | {r['concurrency']} | {r['rps']:,.0f} | "
                  f"{r['mean_ms']:.2f} | {r['errors']} | {r['rps'] / raw[r['model']]['best']['rows_per_s']:.0%} | "
                  f"{_after(r)} | {_around(r)} |" for r in h2rows]
        lines.append("")
    if peers:
        ours = {(r["model"], r["protocol"], r["concurrency"]): r for r in results + h2rows}
        lines += ["## PyTriton in the same run (`--peer-python`)", "",
                  "Triton's C++ server core with the model in onnxruntime behind PyTriton's Python function, the "
                  "same batching settings and load generators (`bench/peer_pytriton.py`).", "",
                  "| model | protocol | concurrency | PyTriton req/s | PyTriton p50 (ms) | maas req/s | maas p50 (ms) "
                  "| maas ÷ PyTriton |", "|---|---|---:|---:|---:|---:|---:|---:|"]
        for r in peers:
            m = ours.get((r["model"], r["protocol"], r["concurrency"]))
            latency = "p50_ms" if "p50_ms" in r else "mean_ms"
            mine = f"{m['rps']:,.0f} | {m[latency]:.2f} | {m['rps'] / r['rps']:.2f}x" if m and r["rps"] else "- | - | -"
            lines.append(f"| {r['model']} | {r['protocol']} | {r['concurrency']} | {r['rps']:,.0f} | "
                         f"{r[latency]:.2f} | {mine} |")
        lines += ["", "(h2load rows: mean latency instead of p50.)", ""]
    if floors:
        lines += ["## Transport floors: servers that do no work, same load generators", "",
                  "uvicorn + uvloop + httptools reading the tiny CNN's body and answering 56 bytes; grpc.aio on uvloop "
                  "answering ModelInfer with fixed bytes (`bench/floor_servers.py`). No server on these stacks can "
                  "beat these figures here.", "",
                  "| protocol | concurrency | req/s | p50 (ms) | p99 (ms) |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {r['protocol']} | {r['concurrency']} | {r['rps']:,.0f} | "
                  + (f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} |" if "p50_ms" in r else f"mean {r['mean_ms']:.2f} | |")
                  for r in floors]
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per measured cell (default 10)")
    ap.add_argument("--raw-seconds", type=float, default=2.0, help="seconds per raw onnxruntime measurement")
    ap.add_argument("--models", default="cnn,resnet18")
    ap.add_argument("--protocols", default="rest-json,rest-binary,grpc")
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "latest.md")
    ap.add_argument("--keep-home", action="store_true", help="keep the temporary MAAS_HOME and server log")
    ap.add_argument("--no-floors", action="store_true", help="skip the transport floors (servers doing no work)")
    ap.add_argument("--peer-python", help="a Python with nvidia-pytriton and onnxruntime: measure PyTriton too")
    ap.add_argument("--tree", action="append", default=[], metavar="NAME=SRC",
                    help="serve from this source tree (repeatable: trees alternate per model and per --rounds, "
                         "e.g. --tree base=/tmp/base/src --tree branch=src); default: this checkout's src/")
    ap.add_argument("--rounds", type=int, default=1,
                    help="how many times to serve every tree (alternating them; raw onnxruntime's best cell and "
                    "batch-1 p50 are measured again between servers)")
    args = ap.parse_args()
    trees = [(n, Path(p).resolve()) for n, p in (t.split("=", 1) for t in args.tree)] or [("maas", ROOT / "src")]
    if shutil.which("wrk") is None:
        print("bench needs wrk (the HTTP load generator): apt-get install -y wrk", file=sys.stderr)
        return 2
    names = [m for m in args.models.split(",") if m]
    protocols = [p for p in args.protocols.split(",") if p]
    levels = [int(c) for c in args.concurrency.split(",")]
    cores = len(os.sched_getaffinity(0))
    load_before, busy = os.getloadavg(), busy_processes()

    print("building models ...", flush=True)
    built = {k: v for k, v in models.build().items() if k in names}
    raw = {}
    for name, (onnx_bytes, row_shape) in built.items():
        print(f"raw onnxruntime: {name} ...", flush=True)
        raw[name] = raw_onnxruntime(name, onnx_bytes, row_shape, cores, args.raw_seconds)
        b = raw[name]["best"]
        print(f"  batch-1 p50 {raw[name]['p50_ms_batch1']:.3f} ms; best {b['rows_per_s']:,.0f} rows/s ({b})")

    work = Path(tempfile.mkdtemp(prefix="maas-bench-"))
    results: list[dict] = []
    floors: list[dict] = []
    h2rows: list[dict] = []  # gRPC again, driven by h2load (C) when it is installed
    peers: list[dict] = []  # the same cells against PyTriton, with --peer-python
    bodies_by_model: dict[str, dict[str, tuple[bytes, int | None]]] = {}
    try:
        rng = np.random.default_rng(1)
        for name, (_, row_shape) in built.items():
            b = bodies(rng.random((1, *row_shape), dtype=np.float32))
            from maas.protocol.grpc_gen import inference_pb2 as pb

            msg = pb.ModelInferRequest.FromString(b["grpc"][0])
            msg.model_name = name
            b["grpc"] = (msg.SerializeToString(), None)
            bodies_by_model[name] = b
        raw_last = {name: (r["best"]["rows_per_s"], r["p50_ms_batch1"]) for name, r in raw.items()}  # latest raw
        for rnd in range(args.rounds):
            for tree, src in trees:
                home = work / f"home-{tree}-{rnd}"
                register(home, built, src)
                proc, http_port, grpc_port = start_server(home, work / f"server-{tree}-{rnd}.log", src)
                print(f"maas serve ({tree}, {src}): pid {proc.pid}, http :{http_port}, grpc :{grpc_port}", flush=True)
                try:
                    for name in built:
                        for r in measure_server(tree, name, bodies_by_model[name], protocols, levels, http_port,
                                                grpc_port, args.duration, work):
                            r.update(tree=tree, round=rnd)
                            (h2rows if r["protocol"] == "grpc (h2load)" else results).append(r)
                finally:
                    stop_server(proc)
                for name, (onnx_bytes, row_shape) in built.items():
                    after = raw_again(onnx_bytes, row_shape, raw[name], args.raw_seconds)
                    print(f"  raw onnxruntime again: {name} best {after[0]:,.0f} rows/s, batch-1 p50 "
                          f"{after[1]:.2f} ms", flush=True)
                    for r in results + h2rows:
                        if r["tree"] == tree and r["round"] == rnd and r["model"] == name:
                            r.update(raw_before=raw_last[name][0], raw_after=after[0], p50_before=raw_last[name][1],
                                     p50_after=after[1])
                    raw_last[name] = after
        for name, (onnx_bytes, _) in built.items() if args.peer_python else ():
            print(f"PyTriton: {name} ...", flush=True)
            (work / f"{name}.onnx").write_bytes(onnx_bytes)
            peer, http_port, grpc_port = start_peer(args.peer_python, name, work / f"{name}.onnx",
                                                    work / f"pytriton-{name}.log")
            try:
                peers += measure_server("pytriton", name, bodies_by_model[name], protocols, levels, http_port,
                                        grpc_port, args.duration, work)
            finally:
                stop_server(peer)
        if "cnn" in bodies_by_model and not args.no_floors:
            print("transport floors ...", flush=True)
            floors = measure_floors(bodies_by_model["cnn"], levels, args.duration, work)
    finally:
        if args.keep_home:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report = render(results, raw, args, load_before, os.getloadavg(), busy, floors, h2rows, peers)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    everything = {"raw": raw, "results": results, "h2load": h2rows, "peers": peers, "floors": floors}
    (args.out.with_suffix(".json")).write_text(json.dumps(everything, indent=1))
    print("\n" + report)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
