"""onnxruntime-genai as a text runtime: a tiny random Llama imported with `runtime="onnxruntime-genai"` becomes a
converted next version with lineage and greedy parity, and the continuous-batching engine over it produces,
for rows that join and leave a running batch, exactly what transformers' generate produces alone."""

from __future__ import annotations

import asyncio

import pytest

from maas.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from maas.formats import ImportOptions, import_file
from maas.llm.convert import convert
from maas.llm.engine import ContinuousBatchingEngine, EngineOptions
from maas.llm.genai_runtime import GenaiTextRuntime
from maas.llm.importing import materialize
from maas.llm.requests import SamplingParams
from maas.registry import Registry

from .test_llm_engine import PROMPTS, collect, greedy, no_eos, staggered
from .tiny_lm import reference, save_tiny_llama


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("genai")
    model = save_tiny_llama(tmp / "hf")
    with Registry.open(tmp / "home") as reg:
        version = import_file(reg, tmp / "hf", name="tiny",
                              options=ImportOptions(aliases=("production",), runtime="onnxruntime-genai"))
        runtime = GenaiTextRuntime.load(materialize(reg, version, tmp / "m"), "tiny")
        yield reg, model, version, runtime


def test_import_publishes_the_genai_conversion_with_lineage_and_parity(imported):
    reg, _, v, rt = imported
    assert (v.version, v.source_format, v.config["runtime"], v.config["precision"]) == (
        2, "onnxruntime-genai", "onnxruntime-genai", "fp32")
    assert v.lineage.parent == 1 and v.lineage.transform == "convert"
    assert v.parity["passed"] and v.parity["equal_prompts"] == v.parity["prompts"] == 4
    assert reg.get("tiny@production").version == 2 and reg.get("tiny:1").source_format == "huggingface"
    roles = {a.role for a in v.artifacts}
    assert {"model.onnx", "genai_config.json", "tokenizer.json"} <= roles and "model.safetensors" not in roles
    assert (rt.context_length, rt.vocab_size) == (128, 300)
    with pytest.raises(FailedPrecondition, match="already runs on onnxruntime-genai"):
        convert(reg, "tiny:2")


def test_engine_over_genai_matches_generate_token_for_token(imported):
    _, model, _, rt = imported
    no_eos(rt)
    lengths = [9, 3, 6, 12]
    results, stats = staggered(rt, lengths)
    for (ids, last), prompt, n in zip(results, PROMPTS, lengths, strict=True):
        assert ids == reference(model, prompt, n)
        assert last.finish_reason == "length"
    assert stats["running"] == 0 and stats["kv_cache_reserved"] == 0


def test_seeded_sampling_cancel_and_saturation_on_genai(imported):
    _, _, _, rt = imported
    no_eos(rt)
    params = SamplingParams(max_tokens=8, temperature=0.9, top_p=0.9, seed=7)

    async def main():
        engine = ContinuousBatchingEngine(rt, EngineOptions(max_running=1, max_waiting=1, kv_cache_tokens=256))
        a = (await collect(engine.submit(PROMPTS[1], params)))[0]
        b = (await collect(engine.submit(PROMPTS[1], params)))[0]
        long = engine.submit(PROMPTS[0], greedy(100))
        stream = long.stream()
        await stream.__anext__()
        waiting = engine.submit(PROMPTS[2], greedy(3))
        with pytest.raises(ResourceExhausted):
            engine.submit(PROMPTS[3], greedy(3))
        await stream.aclose()
        ids, _ = await asyncio.wait_for(collect(waiting), 30)
        await engine.close()
        return a, b, ids

    a, b, ids = asyncio.run(main())
    assert a == b and len(a) == 8 and len(ids) == 3


def test_genai_refuses_an_embedding_model_and_an_unknown_runtime(imported, tmp_path):
    reg, *_ = imported
    (tmp_path / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    with pytest.raises(InvalidArgument, match="runtime must be one of"):
        import_file(reg, tmp_path, name="x", options=ImportOptions(format="huggingface", runtime="vllm"))
    with pytest.raises(InvalidArgument, match="not a text-generation model"):
        reg.publish("emb", {"config.json": b"{}"}, config={"kind": "embedding"})
        convert(reg, "emb")
