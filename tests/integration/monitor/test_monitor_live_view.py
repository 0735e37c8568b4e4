"""`maas monitor`, the live terminal view, against the real server (one frame with --once)."""

import os
import subprocess
import sys
import threading

import httpx

from maas.monitor.live import lines, parse


def test_one_frame_shows_served_models(server):
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
    stop = threading.Event()

    def traffic():
        with httpx.Client(base_url=server.base_url) as c:
            while not stop.is_set():
                c.post("/v2/models/linear/infer", json=body)

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "160"}
        out = subprocess.run(
            [sys.executable, "-m", "maas.cli", "monitor", "--once", "--interval", "1", "--url", server.base_url],
            capture_output=True, text=True, env=env, timeout=120,
        )
    finally:
        stop.set()
        worker.join()
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if "linear" in line)
    cells = [c.strip() for c in row.split("│") if c.strip()]
    assert cells[:2] == ["linear", "1"]
    assert float(cells[2]) > 0  # requests per second
    assert cells[3] != "-" and cells[4] != "-"  # p50 and p99 from the histogram
    assert cells[-1] == "-"  # no drift figures for an unlogged model


def test_unreachable_server_is_one_line_error():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-m", "maas.cli", "monitor", "--once", "--url", "http://127.0.0.1:9"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode != 0
    assert out.stderr.strip().startswith("error:") and "Traceback" not in out.stderr


def test_quantiles_and_rates_from_two_scrapes():
    def scrape(n_fast, n_slow, errors, drift):
        key = 'model="m",version="1"'
        rest = key + ',protocol="rest"'
        total = n_fast + n_slow
        return "\n".join([
            "# TYPE maas_inference_requests_total counter",
            f'maas_inference_requests_total{{{rest},outcome="ok"}} {total}',
            f'maas_inference_requests_total{{{rest},outcome="internal"}} {errors}',
            "# TYPE maas_inference_request_seconds histogram",
            f'maas_inference_request_seconds_bucket{{{rest},le="0.01"}} {n_fast}',
            f'maas_inference_request_seconds_bucket{{{rest},le="1.0"}} {total}',
            f'maas_inference_request_seconds_bucket{{{rest},le="+Inf"}} {total}',
            f"maas_inference_request_seconds_count{{{rest}}} {total}",
            f"maas_inference_request_seconds_sum{{{rest}}} 1",
            "# TYPE maas_inference_queue_depth gauge",
            f"maas_inference_queue_depth{{{key}}} 3",
            "# TYPE maas_dataset_drift gauge",
            f"maas_dataset_drift{{{key}}} {drift}",
            "",
        ])

    (line,) = lines(parse(scrape(0, 0, 0, 0)), parse(scrape(98, 2, 4, 1)), 2.0)
    assert line.requests_per_s == 52.0  # 100 ok + 4 failed in 2 s
    assert line.p50_ms is not None and line.p50_ms <= 10
    assert line.p99_ms is not None and 10 < line.p99_ms <= 1000
    assert (line.errors, line.queue_depth, line.drift) == (4, 3, "drift")
