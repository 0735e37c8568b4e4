"""`maas explain REF --data D` and `maas explain background REF --data D`: JSON for scripts, the HTML report
with its plots, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from maas.cli import context
from maas.cli.explain_cmd import register

from .explain_models import digit_png

runner = CliRunner()


def make_app(home: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("MAAS_HOME", str(home))
    monkeypatch.setattr(context, "state", context.CliState())
    root = typer.Typer(pretty_exceptions_enable=False)

    @root.callback()
    def main() -> None:
        """Test root (a callback keeps sub-commands as sub-commands)."""

    register(root)
    return root


def invoke(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def tab_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("explain-data")
    x = np.random.default_rng(2).normal(size=(40, 4))
    y = (x @ [3, 0, -2, 0] > 0).astype(int)
    good, bad = folder / "rows.csv", folder / "three.csv"
    np.savetxt(good, np.c_[x, y], delimiter=",", header="a,b,c,d,y", comments="")
    np.savetxt(bad, np.c_[x[:, :3], y], delimiter=",", header="a,b,c,y", comments="")
    return good, bad


def test_tabular_importance_and_report(explain_home: Path, tab_csv: tuple[Path, Path], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(explain_home, monkeypatch)
    good, _ = tab_csv
    code, out, err = invoke(app, "explain", "tab", "--data", str(good), "--rows", "0:20", "--json",
                            "--report", str(tmp_path / "r"))
    assert code == 0, err
    doc = json.loads(out)
    assert doc["ref"] == "tab:1" and doc["rows"] == [0, 20] and doc["method"] == "kernel"
    assert [f["feature"] for f in doc["importance"][:2]] == ["0", "2"]
    assert doc["importance"][2]["importance"] < 1e-9
    assert doc["parameters"]["background"] == "unit rows"
    page = (tmp_path / "r" / "explanation.html").read_text()
    assert "Global importance" in page and "beeswarm" in page and page.count("data:image/png;base64,") == 2
    assert json.loads((tmp_path / "r" / "explanation.json").read_text())["n_features"] == 4


def test_background_from_data_and_wrong_columns(explain_home: Path, tab_csv: tuple[Path, Path],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(explain_home, monkeypatch)
    good, bad = tab_csv
    code, _out, err = invoke(app, "explain", "background", "tab", "--data", str(bad))
    assert code != 0 and "the background set has 3 columns but tab:1's input 'x' has 4 features" in err
    assert "Traceback" not in err
    code, out, err = invoke(app, "explain", "background", "tab", "--data", str(good), "--background-rows", "10",
                            "--json")
    assert code == 0, err
    assert json.loads(out)["rows"] == 10 and json.loads(out)["columns"] == {"x": [4]}
    code, out, err = invoke(app, "explain", "tab", "--data", str(good), "--rows", "0:5", "--json")
    assert json.loads(out)["parameters"]["background"] == str(good)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rows", "9:3"], "--rows must be START:STOP"),
        (["--method", "lime"], "unknown method 'lime'"),
        (["--method", "occlusion"], "explains images"),
        (["--target", "5"], "target 5 is out of range"),
    ],
)
def test_errors_are_one_line(explain_home: Path, tab_csv: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
                             args: list[str], message: str) -> None:
    app = make_app(explain_home, monkeypatch)
    code, _out, err = invoke(app, "explain", "tab", "--data", str(tab_csv[0]), *args)
    assert code != 0 and message in err and "Traceback" not in err


def test_image_folder_grid_of_heat_maps(digits_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(4):
        png, _ = digit_png(i)
        (tmp_path / "data" / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / f"c{i % 2}" / f"{i}.png").write_bytes(png)
    app = make_app(digits_home, monkeypatch)
    code, out, err = invoke(app, "explain", "digits", "--data", str(tmp_path / "data"), "--window", "4", "--json",
                            "--report", str(tmp_path / "r"))
    assert code == 0, err
    doc = json.loads(out)
    assert doc["method"] == "occlusion" and doc["n_features"] == 28 * 28 and doc["rows"] == [0, 4]
    page = (tmp_path / "r" / "explanation.html").read_text()
    assert "Inputs and heat maps" in page and page.count("<figure>") >= 4 + len(doc["per_class"])


def test_numeric_rows_for_an_image_model_are_explained_as_pictures(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """sklearn's 8x8 digits (numbers) sent to a model that decodes PNGs: occlusion in the picture's pixels,
    and on a model that adds up brightness, no heat where the picture is black."""
    from maas.registry import Registry

    from .explain_models import BRIGHTNESS_PRE, brightness_model

    with Registry.open(tmp_path) as reg:
        reg.publish("bright", {"model.onnx": brightness_model()}, config={"preprocess": BRIGHTNESS_PRE})
    app = make_app(tmp_path, monkeypatch)
    code, out, err = invoke(app, "explain", "bright", "--data", "sklearn:digits", "--rows", "0:3", "--window", "1",
                            "--target", "0", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["method"] == "occlusion" and doc["n_features"] == 64
    from maas.evaluate.datasets import load_dataset

    x = load_dataset("sklearn:digits").x[:3].reshape(3, 8, 8)
    dark = {f"{r * 8 + c}" for r, c in zip(*np.nonzero(x.max(axis=0) == 0), strict=True)}
    assert dark and all(f["feature"] not in dark for f in doc["importance"][:10])
    assert doc["per_class"]["0"]["rows"] == 3
