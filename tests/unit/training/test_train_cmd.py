"""`maas train`: prints NAME:VERSION and the test metrics, or JSON; bad configs exit 2 with the field named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from maas.cli import context, train_cmd

CONFIG = "name: iris\nseed: 0\ndata: {source: 'sklearn:iris'}\nmodel: {family: logistic_regression}\n"


@pytest.fixture
def app(home: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setattr(context, "state", context.CliState())
    monkeypatch.setattr(train_cmd, "state", context.state)
    root = typer.Typer()
    root.callback()(lambda: None)  # keeps `train` a sub-command, as in the real app
    train_cmd.register(root)
    return root


def test_train_prints_ref_and_metrics(app: typer.Typer, tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(CONFIG)
    result = CliRunner().invoke(app, ["train", str(tmp_path / "t.yaml")])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "iris:1" and "test accuracy:" in result.stdout
    result = CliRunner().invoke(app, ["train", str(tmp_path / "t.yaml"), "--name", "other", "--json"])
    data = json.loads(result.stdout)
    assert data["version"]["model"] == "other" and data["result"]["ref"] == "other:1"
    assert data["version"]["metrics"]["test"] == data["result"]["test_metrics"]


def test_bad_config_exits_2_naming_the_field(app: typer.Typer, tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(CONFIG.replace("logistic_regression", "foo"))
    result = CliRunner().invoke(app, ["train", str(tmp_path / "t.yaml")])
    assert result.exit_code == 2
    assert "error: model.family: unknown family 'foo'" in result.stderr
