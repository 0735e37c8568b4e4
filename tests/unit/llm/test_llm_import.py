"""Language models into the registry: live transformers objects and Hugging Face directories stored as
safetensors with kind, context and vocabulary; pickled checkpoints refused; the stored files load back and
generate what the original did."""

from __future__ import annotations

import asyncio
import json

import pytest

import maas
from maas.errors import InvalidArgument
from maas.formats import ImportOptions, import_file
from maas.llm.engine import ContinuousBatchingEngine
from maas.llm.importing import materialize
from maas.llm.requests import SamplingParams
from maas.llm.torch_runtime import TransformersTextRuntime
from maas.registry import Registry

from .tiny_lm import reference, tiny_llama


@pytest.fixture
def registry(tmp_path):
    with Registry.open(tmp_path / "home") as reg:
        yield reg


def test_register_live_model_and_serve_it_back(registry, tmp_path):
    model, tokenizer = tiny_llama()
    v = maas.register(model, tokenizer, name="tiny", registry=registry, runtime="transformers")
    assert v.source_format == "transformers"
    assert (v.config["kind"], v.config["context_length"], v.config["vocab_size"]) == ("text-generation", 128, 300)
    assert v.signature is not None and v.signature.inputs[0].datatype == "BYTES"
    roles = {a.role for a in v.artifacts}
    assert "model.safetensors" in roles and not any(r.endswith((".bin", ".pt")) for r in roles)
    rt = TransformersTextRuntime.load(materialize(registry, v, tmp_path / "m"), "tiny")
    rt.eos_token_ids = frozenset()

    async def main():
        engine = ContinuousBatchingEngine(rt)
        ids = []
        async for out in engine.submit([5, 6, 7], SamplingParams(max_tokens=5, temperature=0)).stream():
            ids += out.token_ids
        await engine.close()
        return ids

    assert asyncio.run(main()) == reference(model, [5, 6, 7], 5)


def test_import_hf_directory_and_refuse_pickles(registry, tmp_path):
    model, tokenizer = tiny_llama()
    d = tmp_path / "hf"
    model.save_pretrained(d)
    tokenizer.save_pretrained(d)
    v = import_file(registry, d, name="tiny-dir", options=ImportOptions(runtime="transformers"))
    assert v.source_format == "huggingface" and v.config["kind"] == "text-generation"
    assert set(v.config["files"].values()) >= {"config.json", "model.safetensors", "tokenizer.json"}

    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((d / "config.json").read_text())
    (pickled / "tokenizer.json").write_text((d / "tokenizer.json").read_text())
    import torch

    torch.save(model.state_dict(), pickled / "pytorch_model.bin")
    with pytest.raises(InvalidArgument, match="pickled checkpoint"):
        import_file(registry, pickled, name="tiny-pickled")
    assert [m.name for m in registry.list_models()] == ["tiny-dir"]


def test_directory_without_weights_or_architecture_is_refused(registry, tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    with pytest.raises(InvalidArgument, match="safetensors"):
        import_file(registry, d, name="nothing")
