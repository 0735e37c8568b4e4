"""The continuous-batching engine over the transformers runtime, on a tiny random Llama: sequences that join a
running batch and leave it produce exactly what each would alone; admission, cancellation, 429 and timeouts."""

from __future__ import annotations

import asyncio

import pytest

from maas.errors import DeadlineExceeded, InvalidParameter, ResourceExhausted
from maas.llm.engine import ContinuousBatchingEngine, EngineOptions
from maas.llm.requests import SamplingParams
from maas.llm.torch_runtime import TransformersTextRuntime

from .tiny_lm import EOS, reference, tiny_llama

PROMPTS = [[5, 6, 7, 8, 9, 10, 11], [20, 21], [30, 31, 32, 33], [40]]


@pytest.fixture(scope="module")
def tiny():
    model, tokenizer = tiny_llama()
    return model, TransformersTextRuntime(model, tokenizer, name="tiny")


def greedy(n: int, **kw) -> SamplingParams:
    return SamplingParams(max_tokens=n, temperature=0.0, **kw)


async def collect(handle):
    ids, last = [], None
    async for out in handle.stream():
        ids += out.token_ids
        last = out
    return ids, last


def no_eos(runtime):
    runtime.eos_token_ids = frozenset()  # random weights emit EOS at random: ignore it, as the reference does


def staggered(rt, lengths):
    """PROMPTS[0] starts decoding alone; the others join it a moment later. Returns each one's (ids, last
    output) and the engine's stats after all finished."""

    async def main():
        engine = ContinuousBatchingEngine(rt, EngineOptions(max_running=3, kv_cache_tokens=256))
        first = engine.submit(PROMPTS[0], greedy(lengths[0]))
        task0 = asyncio.create_task(collect(first))
        await asyncio.sleep(0.05)  # the first is decoding when the others arrive
        others = [engine.submit(p, greedy(n)) for p, n in zip(PROMPTS[1:], lengths[1:], strict=True)]
        results = await asyncio.gather(task0, *(collect(h) for h in others))
        stats = engine.stats()
        await engine.close()
        return results, stats

    return asyncio.run(main())


def test_joining_and_leaving_rows_match_generate_alone(tiny):
    model, rt = tiny
    no_eos(rt)
    lengths = [9, 3, 6, 12]
    results, stats = staggered(rt, lengths)
    for (ids, last), prompt, n in zip(results, PROMPTS, lengths, strict=True):
        assert ids == reference(model, prompt, n)
        assert last.finish_reason == "length" and last.completion_tokens == n
    assert stats["running"] == 0 and stats["waiting"] == 0 and stats["kv_cache_reserved"] == 0


def test_cancel_frees_the_slot_and_the_queue_moves_on(tiny):
    _, rt = tiny
    no_eos(rt)

    async def main():
        engine = ContinuousBatchingEngine(rt, EngineOptions(max_running=1, max_waiting=1, kv_cache_tokens=256))
        long = engine.submit(PROMPTS[0], greedy(100))
        stream = long.stream()
        await stream.__anext__()
        waiting = engine.submit(PROMPTS[1], greedy(3))
        with pytest.raises(ResourceExhausted):
            engine.submit(PROMPTS[2], greedy(3))  # one running + one waiting: full
        assert (engine.stats()["running"], engine.stats()["waiting"]) == (1, 1)
        await stream.aclose()  # the client left
        assert engine.stats()["running"] == 0
        ids, last = await asyncio.wait_for(collect(waiting), 30)
        other = engine.submit(PROMPTS[2], greedy(100))
        reader = asyncio.create_task(collect(other))  # another task reads; this one cancels
        await asyncio.sleep(0.05)
        other.cancel()
        await asyncio.wait_for(reader, 5)
        assert engine.stats()["running"] == 0
        await engine.close()
        return ids, last

    ids, last = asyncio.run(main())
    assert len(ids) == 3 and last.finish_reason == "length"


def test_kv_budget_queues_in_arrival_order(tiny):
    _, rt = tiny
    no_eos(rt)

    async def main():
        engine = ContinuousBatchingEngine(rt, EngineOptions(max_running=8, kv_cache_tokens=40))
        order: list[int] = []

        async def run(i, prompt, n):
            async for _ in engine.submit(prompt, greedy(n)).stream():
                if i not in order:
                    order.append(i)  # the order of first tokens is the order of admission

        # 7+20 reserved: the second (2+20) must wait for the first; the third (1+2) must not overtake it.
        await asyncio.gather(run(0, PROMPTS[0], 20), run(1, PROMPTS[1], 20), run(2, PROMPTS[3], 2))
        await engine.close()
        return order

    assert asyncio.run(main()) == [0, 1, 2]


def test_limits_and_timeouts(tiny):
    _, rt = tiny
    no_eos(rt)

    async def main():
        engine = ContinuousBatchingEngine(rt, EngineOptions(kv_cache_tokens=256))
        with pytest.raises(InvalidParameter) as err:
            engine.submit(list(range(10, 140)), greedy(1))
        assert err.value.param == "messages"
        with pytest.raises(InvalidParameter) as err:
            engine.submit(PROMPTS[0], greedy(125))
        assert err.value.param == "max_tokens"
        slow = engine.submit(PROMPTS[0], greedy(120, timeout_s=1e-9))
        with pytest.raises(DeadlineExceeded):
            await collect(slow)
        assert engine.stats()["running"] == 0
        await engine.close()

    asyncio.run(main())


def test_eos_and_stop_strings_finish_with_stop(tiny):
    model, rt = tiny
    rt.eos_token_ids = frozenset({EOS})
    ref = reference(model, PROMPTS[1], 8)
    stop_word = rt.decode([ref[2]])

    async def main():
        engine = ContinuousBatchingEngine(rt, EngineOptions(kv_cache_tokens=256))
        h = engine.submit(PROMPTS[1], greedy(8, stop=(stop_word,)))
        text, last = "", None
        async for out in h.stream():
            text += out.text
            last = out
        await engine.close()
        return text, last

    text, last = asyncio.run(main())
    assert last.finish_reason == "stop"
    assert stop_word not in text or EOS in ref[:3]


def test_seeded_sampling_repeats(tiny):
    _, rt = tiny
    no_eos(rt)

    async def main():
        engine = ContinuousBatchingEngine(rt, EngineOptions(kv_cache_tokens=256))
        params = SamplingParams(max_tokens=10, temperature=0.8, top_p=0.9, seed=3, logprobs=2)
        a, b = await asyncio.gather(collect(engine.submit(PROMPTS[0], params)),
                                    collect(engine.submit(PROMPTS[0], params)))
        await engine.close()
        return a, b

    (ids_a, last_a), (ids_b, _) = asyncio.run(main())
    assert ids_a == ids_b
    assert len(last_a.logprobs) == 1 and len(last_a.logprobs[0].top) == 2
