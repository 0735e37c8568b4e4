"""`maas optimize`: a parent-vs-child table, --json for scripts, one-line errors with a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from maas.cli import context
from maas.cli.optimize_cmd import register
from maas.registry import ModelVersion, Registry

from .optimize_support import TEST_DATA, count_versions

runner = CliRunner()


@pytest.fixture
def app(opt_home: Path, teacher: ModelVersion, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("MAAS_HOME", str(opt_home))
    monkeypatch.setattr(context, "state", context.CliState())
    import maas.cli.optimize_cmd as cmd

    monkeypatch.setattr(cmd, "state", context.state)
    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def root() -> None:
        """A stand-in for maas.cli.main's root."""

    register(app)
    return app


def test_json_output_is_the_new_version_and_its_report(app: typer.Typer, reg: Registry) -> None:
    result = runner.invoke(app, ["optimize", "digits:1", "--quantize", "dynamic", "--data", TEST_DATA, "--json"])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    version = reg.get(f"digits:{out['version']['version']}")
    assert out["version"] == version.to_dict()
    assert out["report"] == version.metrics["optimize"]
    assert out["version"]["lineage"] == {"parent": 1, "transform": "quantize", "params": {"mode": "dynamic"}}


def test_human_output_is_a_table(app: typer.Typer) -> None:
    result = runner.invoke(app, ["optimize", "digits:1", "--prune", "0.3", "--data", TEST_DATA])
    assert result.exit_code == 0, result.stderr
    assert "parent v1" in result.stdout and "accuracy" in result.stdout and "published digits:" in result.stdout


def test_distill_spec_from_a_file_and_errors_are_one_line(app: typer.Typer, reg: Registry, tmp_path: Path) -> None:
    before = count_versions(reg)
    spec = tmp_path / "student.yaml"
    spec.write_text("type: cnn\nchannels: [4, 4, 4, 4, 4, 4]\n")
    cases = [
        (["--distill", str(spec), "--data", TEST_DATA], 2, "does not fit the input"),
        (["--quantize", "static", "--calibration", "sklearn:iris"], 2, "expects ['N', 1, 28, 28]"),
        (["--prune", "0.97", "--data", TEST_DATA, "--max-accuracy-drop", "0.01"], 5, "missed by"),
        (["--prune", "0.5", "--structured"], 5, "structured pruning needs a PyTorch source"),
        (["--prune", "0.5", "--fine-tune", "1"], 2, "fine-tuning applies to structured pruning only"),
    ]
    for args, code, message in cases:
        result = runner.invoke(app, ["optimize", "digits:1", *args])
        assert result.exit_code == code, (args, result.stderr)
        assert result.stderr.startswith("error: ") and message in result.stderr
        assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert runner.invoke(app, ["optimize", "nope:1", "--slim"]).exit_code == 3
    assert count_versions(reg) == before
