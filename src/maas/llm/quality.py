"""How alike and how fast two text runtimes are, measured the same way for each: greedy agreement on stored
prompts (the parity of a conversion, the quality of a quantization), perplexity on a small stored text, and
time to first token and tokens/s through the continuous-batching engine at a given concurrency."""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from typing import Any

# Stored prompts: chat turns of different lengths and subjects.
PROMPTS = (
    "What is the capital of France?",
    "Write one sentence about the sea.",
    "List three colours.",
    "Explain what a bicycle is to a child, briefly.",
)
PARITY_TOKENS = 8
# A small stored text for perplexity: plain encyclopaedic English, written for this purpose.
TEXT = (
    "The river rises in the hills to the north of the city and flows south through farmland before it reaches "
    "the sea. In the spring the water is high and fast, and the old stone bridge in the town centre is closed "
    "to carts. Most of the year, however, the river is calm enough for small boats, and children swim near the "
    "mill on warm afternoons. The town grew up around the crossing because merchants travelling to the coast "
    "had to pass this way, and the market square still holds a fair every autumn."
)


def greedy(runtime: Any, prompt: list[int], n: int) -> list[int]:
    """n greedy tokens through the runtime protocol (EOS ignored: both sides generate the same count)."""
    import torch

    batch, logits = runtime.prefill([prompt], [len(prompt) + n])
    out = [int(torch.argmax(logits[0]))]
    while len(out) < n:
        batch, logits = runtime.step(batch, [out[-1]])
        out.append(int(torch.argmax(logits[0])))
    return out


def agreement(parent: Any, child: Any, tokens: int = PARITY_TOKENS) -> dict[str, Any]:
    """Greedy agreement of child with parent on the stored prompts: sequences equal, and the share of
    positions that agree before the first divergence (a later token follows a different history)."""
    equal, agreed, total = 0, 0, 0
    for text in PROMPTS:
        prompt = parent.chat_prompt([{"role": "user", "content": text}])
        a, b = greedy(parent, prompt, tokens), greedy(child, prompt, tokens)
        equal += a == b
        agreed += next((i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), len(a))
        total += len(a)
    return {"method": "greedy", "prompts": len(PROMPTS), "tokens": tokens, "equal_prompts": equal,
            "token_agreement": round(agreed / total, 4), "passed": equal == len(PROMPTS)}


def perplexity(runtime: Any, text: str = TEXT) -> float:
    """exp(mean negative log-likelihood) of the text's tokens after the first, fed one token at a time."""
    import torch

    ids = runtime.encode(text)[: runtime.context_length]
    batch, logits = runtime.prefill([ids[:1]], [len(ids)])
    nll = 0.0
    for i, token in enumerate(ids[1:], start=1):
        nll -= float(torch.log_softmax(logits[0], dim=-1)[token])
        if i < len(ids) - 1:
            batch, logits = runtime.step(batch, [token])
    return round(math.exp(nll / max(1, len(ids) - 1)), 4)


def speed(runtime: Any, concurrency: int, max_tokens: int = 16, requests: int | None = None) -> dict[str, float]:
    """Median time to first token and aggregate tokens/s of `requests` greedy chats, `concurrency` at once."""
    from maas.llm.engine import ContinuousBatchingEngine, EngineOptions
    from maas.llm.requests import SamplingParams

    count = requests or concurrency
    prompts = [runtime.chat_prompt([{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]) for i in range(count)]
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0)

    async def run() -> dict[str, float]:
        engine = ContinuousBatchingEngine(runtime, EngineOptions(max_running=concurrency, max_waiting=count))
        firsts: list[float] = []
        tokens = 0

        async def one(prompt: list[int]) -> None:
            nonlocal tokens
            start = time.perf_counter()
            first = None
            async for out in engine.submit(prompt, params).stream():
                first = first or time.perf_counter()
                tokens += len(out.token_ids)
            firsts.append((first or time.perf_counter()) - start)

        start = time.perf_counter()
        sem = asyncio.Semaphore(concurrency)

        async def limited(prompt: list[int]) -> None:
            async with sem:
                await one(prompt)

        await asyncio.gather(*(limited(p) for p in prompts))
        wall = time.perf_counter() - start
        await engine.close()
        return {"ttft_ms": round(1000 * statistics.median(firsts), 1), "tokens_per_s": round(tokens / wall, 2)}

    return asyncio.run(run())
