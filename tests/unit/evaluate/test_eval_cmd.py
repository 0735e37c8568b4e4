"""`maas eval`, `maas compare`, `maas cv`: JSON for scripts, tables for people, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from maas.cli import context
from maas.cli.eval_cmd import register

runner = CliRunner()


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models: dict[str, Any]) -> typer.Typer:
    from maas.registry import Registry

    monkeypatch.setenv("MAAS_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(context, "state", context.CliState())
    with Registry.open(tmp_path / "home") as reg:
        path, sig, _ = models["iris"]
        for _ in range(2):
            reg.publish("iris", {"model.onnx": path}, signature=sig,
                        config={"labels": ["setosa", "versicolor", "virginica"], "max_batch_size": 8})
    root = typer.Typer(pretty_exceptions_enable=False)

    @root.callback()
    def main() -> None:
        """Test root (a callback keeps sub-commands as sub-commands)."""

    register(root)
    return root


def invoke(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_eval_json_and_report(app: typer.Typer, tmp_path: Path) -> None:
    code, out, err = invoke(app, "eval", "iris:1", "--data", "sklearn:iris", "--json", "--report", str(tmp_path / "r"))
    assert code == 0, err
    data = json.loads(out)
    assert data["ref"] == "iris:1" and data["metrics"]["accuracy"] > 0.95 and data["n_samples"] == 150
    assert set(data["latency"]) == {"batch_1", "batch_8"}
    assert Path(data["files"]["html"]).is_file() and (tmp_path / "r" / "report.json").is_file()


def test_eval_table(app: typer.Typer) -> None:
    code, out, _ = invoke(app, "eval", "iris", "--data", "sklearn:iris?split=test", "--no-latency")
    assert code == 0 and "accuracy" in out and "f1_macro" in out and "iris:2" in out


def test_compare_json_and_table(app: typer.Typer) -> None:
    code, out, _ = invoke(app, "compare", "iris:1", "iris:2", "--data", "sklearn:iris", "--no-latency", "--json")
    assert code == 0 and [r["ref"] for r in json.loads(out)] == ["iris:1", "iris:2"]
    code, out, _ = invoke(app, "compare", "iris:1", "iris:2", "--data", "sklearn:iris", "--no-latency")
    assert code == 0 and "iris:1" in out and "iris:2" in out and "size (bytes)" in out


def test_cv_json(app: typer.Typer) -> None:
    code, out, err = invoke(app, "cv", "knn", "--data", "sklearn:iris", "-k", "3", "--param", "n_neighbors=5", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["k"] == 3 and data["params"] == {"n_neighbors": "5"} and data["metrics"]["accuracy"]["mean"] > 0.9
    code, out, _ = invoke(app, "cv", "ridge", "--data", "sklearn:diabetes", "-k", "3")
    assert code == 0 and "r2" in out


@pytest.mark.parametrize(
    "args, exit_code, words",
    [
        (("eval", "iris", "--data", "missing.csv"), 2, "does not exist"),
        (("eval", "nope", "--data", "sklearn:iris"), 3, "nope"),
        (("eval", "iris", "--data", "sklearn:iris", "--task", "ranking"), 2, "unknown task"),
        (("eval", "iris", "--data", "sklearn:wine"), 2, "do not fit"),
        (("cv", "os.system", "--data", "sklearn:iris"), 2, "unknown model family"),
        (("cv", "svm", "--data", "sklearn:iris", "--param", "bogus=1"), 2, "no parameter 'bogus'"),
        (("cv", "svm", "--data", "sklearn:iris", "-k", "100"), 2, "too small for 100 folds"),
    ],
)
def test_errors_are_one_line(app: typer.Typer, args: tuple[str, ...], exit_code: int, words: str) -> None:
    code, out, err = invoke(app, *args)
    assert code == exit_code and words in err and err.startswith("error: ") and err.count("\n") == 1
    assert "Traceback" not in err + out
