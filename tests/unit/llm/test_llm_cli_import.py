"""`maas import DIR --name …` for a Hugging Face directory, through the CLI's import command."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from maas.cli import import_cmd
from maas.cli.context import state

from .tiny_lm import tiny_llama


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setitem(state.overrides, "home", tmp_path / "home")
    monkeypatch.setattr(state, "_registry", None)
    cli = typer.Typer()
    import_cmd.register(cli)
    yield cli
    if state._registry is not None:
        state._registry.close()


def test_cli_imports_a_hf_directory_and_refuses_a_pickled_one(app, tmp_path):
    model, tokenizer = tiny_llama()
    d = tmp_path / "hf"
    model.save_pretrained(d)
    tokenizer.save_pretrained(d)
    runner = CliRunner()
    res = runner.invoke(app, ["import", str(d), "--name", "tiny", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    # Text generation defaults to transformers (one version); onnxruntime-genai is published after the import's.
    assert doc["config"]["kind"] == "text-generation" and doc["source_format"] == "huggingface"
    assert doc["version"] == 1 and "runtime" not in doc["config"]
    res = runner.invoke(app, ["import", str(d), "--name", "tiny", "--runtime", "onnxruntime-genai", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert (doc["version"], doc["lineage"]["parent"], doc["source_format"]) == (3, 2, "onnxruntime-genai")
    assert doc["config"]["runtime"] == "onnxruntime-genai"
    res = runner.invoke(app, ["import", str(d), "--name", "tiny", "--runtime", "vllm"])
    assert res.exit_code == 2 and "runtime must be one of" in res.output
    (d / "model.safetensors").unlink()
    (d / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")  # a pickle
    res = runner.invoke(app, ["import", str(d), "--name", "tiny"])
    assert res.exit_code != 0
    assert "pickled checkpoint" in res.output and "Traceback" not in res.output
