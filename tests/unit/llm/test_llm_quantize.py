"""`maas optimize REF --quantize int4|int8` on a language model: a genai child with lineage whose report
compares it with its parent (size, TTFT, tokens/s at c=1 and c=8, perplexity, greedy agreement); the accuracy
gate reads greedy agreement; bad modes and other transforms are refused."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from maas.cli import optimize_cmd
from maas.cli.context import state
from maas.errors import FailedPrecondition, InvalidArgument
from maas.formats import ImportOptions, import_file
from maas.optimize import optimize
from maas.registry import Registry

from .tiny_lm import save_tiny_llama


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quantize")
    save_tiny_llama(tmp / "hf")
    with Registry.open(tmp / "home") as reg:
        # 1: safetensors, 2: genai fp32
        import_file(reg, tmp / "hf", name="tiny", options=ImportOptions(runtime="onnxruntime-genai"))
    return tmp / "home"


def test_int4_child_has_lineage_and_a_report_against_its_parent(home):
    with Registry.open(home) as reg:
        result = optimize(reg, "tiny:1", quantize="int4")
        v, report = result.version, result.report
        assert v.lineage.parent == 1 and v.lineage.transform == "quantize"
        assert (v.config["runtime"], v.config["precision"]) == ("onnxruntime-genai", "int4")
        parent, child, comp = report["parent"], report["child"], report["comparison"]
        for side in (parent, child):
            assert {"size_bytes", "perplexity", "ttft_ms_c1", "tokens_per_s_c1", "tokens_per_s_c8",
                    "accuracy"} <= set(side)
            assert side["perplexity"] > 1 and side["tokens_per_s_c8"] > 0
        assert child["size_bytes"] < parent["size_bytes"] and comp["size_ratio"] < 1
        assert 0 <= child["accuracy"] <= 1 and comp["accuracy_drop"] == pytest.approx(1 - child["accuracy"])
        assert v.metrics["optimize"]["comparison"] == comp
        assert reg.get("tiny").version == v.version


def test_cli_int8_of_the_genai_version_and_the_gate(home, monkeypatch):
    monkeypatch.setitem(state.overrides, "home", home)
    monkeypatch.setattr(state, "_registry", None)
    app = typer.Typer()
    optimize_cmd.register(app)
    try:
        res = CliRunner().invoke(app, ["tiny:2", "--quantize", "int8", "--json"])
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout)
        assert doc["version"]["lineage"]["parent"] == 2 and doc["version"]["lineage"]["params"]["built_from"] == 1
        assert doc["report"]["parent"]["accuracy"] == 1.0 and "perplexity_ratio" in doc["report"]["comparison"]
        res = CliRunner().invoke(app, ["tiny:1", "--quantize", "dynamic"])
        assert res.exit_code == 2 and "int4 or int8" in res.output
    finally:
        if state._registry is not None:
            state._registry.close()


def test_gate_and_bad_requests_publish_nothing(home):
    with Registry.open(home) as reg:
        before = len(reg.list_versions("tiny"))
        with pytest.raises(InvalidArgument, match="--quantize int4|int8 only"):
            optimize(reg, "tiny:1", slim=True)
        with pytest.raises(InvalidArgument, match="max accuracy drop"):
            optimize(reg, "tiny:1", quantize="int4", max_accuracy_drop=2)
        result = optimize(reg, "tiny:1", quantize="int4", timing=False)
        drop = result.report["comparison"]["accuracy_drop"]
        if drop > 0:  # the random tiny model's near-uniform logits make int4 diverge somewhere
            with pytest.raises(FailedPrecondition, match="no version was created"):
                optimize(reg, "tiny:1", quantize="int4", max_accuracy_drop=drop / 2, timing=False)
        assert len(reg.list_versions("tiny")) == before + 1
