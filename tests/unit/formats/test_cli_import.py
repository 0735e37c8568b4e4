"""`maas import` / `maas export` through a tiny Typer app, as the lead's main app will wire them."""

from __future__ import annotations

import json
import sys

import onnx
import pytest
import typer
from typer.testing import CliRunner

from maas.cli import import_cmd
from maas.cli.context import state

from .test_onnx_file import _linear


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setitem(state.overrides, "home", tmp_path / "home")
    monkeypatch.setattr(state, "_registry", None)
    cli = typer.Typer()
    import_cmd.register(cli)
    yield cli
    if state._registry is not None:
        state._registry.close()


def test_import_prints_ref_and_json_then_exports(app, tmp_path):
    onnx.save(_linear(), tmp_path / "m.onnx")
    (tmp_path / "labels.txt").write_text("a\nb\nc\n")
    runner = CliRunner()
    res = runner.invoke(app, ["import", str(tmp_path / "m.onnx"), "--name", "lin", "--tag", "k=v"])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == "lin:1"
    res = runner.invoke(
        app,
        [
            "import",
            str(tmp_path / "m.onnx"),
            "--name",
            "lin",
            "--json",
            "--labels",
            str(tmp_path / "labels.txt"),
            "--alias",
            "production",
            "--max-batch-size",
            "16",
        ],
    )
    assert res.exit_code == 0, res.output
    record = json.loads(res.stdout)
    assert record["version"] == 2 and record["config"]["labels"] == ["a", "b", "c"]
    assert record["config"]["max_batch_size"] == 16 and record["aliases"] == ["production"]
    res = runner.invoke(app, ["export", "lin:1", "--format", "onnx", "--out", str(tmp_path / "out.onnx")])
    assert res.exit_code == 0, res.output
    onnx.checker.check_model(onnx.load(tmp_path / "out.onnx"))


def test_refusal_is_one_line_with_exit_code_2(app, tmp_path):
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04N.")
    res = CliRunner().invoke(app, ["import", str(tmp_path / "model.pkl"), "--name", "evil"])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: refusing model.pkl") and res.stderr.count("\n") == 1


def test_tflite_export_is_one_line_with_or_without_tensorflow(app, tmp_path, monkeypatch):
    """Without TensorFlow: 'needs the tensorflow extra' (exit 2); with it, an ONNX-only version has no Keras
    source to convert: FailedPrecondition (exit 5)."""
    import importlib.util

    onnx.save(_linear(), tmp_path / "m.onnx")
    runner = CliRunner()
    assert runner.invoke(app, ["import", str(tmp_path / "m.onnx"), "--name", "lin"]).exit_code == 0
    args = ["export", "lin", "--format", "tflite", "--out", str(tmp_path / "m.tflite")]
    if importlib.util.find_spec("tensorflow") is not None:
        res = runner.invoke(app, args)
        assert res.exit_code == 5 and res.stderr.count("\n") == 1
        assert "keeps no .keras or .h5 source file" in res.stderr
        assert "no Keras source to convert (imported from 'keras')" not in res.stderr
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert res.stderr == "error: TFLite export needs the tensorflow extra: pip install 'maas[tensorflow]'\n"
    assert not (tmp_path / "m.tflite").exists()


def test_processing_steps_from_flags_override_maas_yaml(app, tmp_path):
    onnx.save(_linear(), tmp_path / "m.onnx")
    (tmp_path / "maas.yaml").write_text("postprocess: [{op: softmax}]\npreprocess: [{op: scale, factor: 2.0}]\n")
    runner = CliRunner()
    res = runner.invoke(app, ["import", str(tmp_path / "m.onnx"), "--name", "lin", "--json",
                              "--postprocess", '[{"op": "topk", "k": 2}]'])
    assert res.exit_code == 0, res.output
    config = json.loads(res.stdout)["config"]
    assert config["postprocess"] == [{"op": "topk", "k": 2}]
    assert config["preprocess"] == [{"op": "scale", "factor": 2.0}]
    for bad in ('[{"op": "exec", "code": "rm -rf /"}]', "not json", '{"op": "softmax"}'):
        res = runner.invoke(app, ["import", str(tmp_path / "m.onnx"), "--name", "lin", "--postprocess", bad])
        assert res.exit_code != 0 and "Traceback" not in res.output
