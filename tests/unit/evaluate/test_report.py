"""End to end through the registry: iris and digits classifiers, a diabetes regressor, image folders; results
stored on the version; report.json + a self-contained HTML page; compare."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maas.errors import InvalidArgument
from maas.evaluate import compare, evaluate, load_dataset, write_report
from maas.registry import Registry
from maas.types import Signature, TensorSpec


def test_iris_classifier(reg: Registry, publish: Any) -> None:
    v = publish("iris", max_batch_size=16)
    report = evaluate(reg, "iris", "sklearn:iris")
    assert report.ref == v.ref and report.task == "classification" and report.n_samples == 150
    assert report.metrics["accuracy"] > 0.95 and report.metrics["roc_auc_ovr"] > 0.99
    assert report.metrics["log_loss"] < 0.2
    assert np.asarray(report.metrics["confusion_matrix"]).sum() == 150
    assert report.class_names == ["setosa", "versicolor", "virginica"]
    assert set(report.latency) == {"batch_1", "batch_16"}
    assert report.latency["batch_16"]["batch_size"] == 16 and report.latency["batch_1"]["p50_ms"] > 0
    assert 0 < report.size["gzip_bytes"] < report.size["bytes"]
    stored = reg.get("iris:1").metrics[f"eval:{report.fingerprint}"]
    assert stored == json.loads(json.dumps(report.to_dict()))


def test_digits_held_out_with_declared_scaling(reg: Registry, publish: Any) -> None:
    publish("digits")
    report = evaluate(reg, "digits:1", "sklearn:digits?split=test", latency=False)
    assert report.n_samples == 450 and report.latency is None
    assert report.metrics["accuracy"] > 0.95 and report.metrics["f1_macro"] > 0.95
    assert len(report.metrics["confusion_matrix"]) == 10


def test_diabetes_regressor(reg: Registry, publish: Any, models: dict[str, Any]) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.metrics import r2_score

    publish("diabetes")
    report = evaluate(reg, "diabetes", "sklearn:diabetes", latency=False)
    b = load_diabetes()
    expected = r2_score(b.target, models["diabetes"][2].predict(b.data.astype(np.float32)))
    assert report.task == "regression" and report.metrics["r2"] == pytest.approx(expected, abs=1e-4)
    assert report.metrics["rmse"] >= report.metrics["mae"] > 0


def test_csv_with_class_names_in_another_order(reg: Registry, publish: Any, tmp_path: Path) -> None:
    from sklearn.datasets import load_iris

    publish("iris")
    b = load_iris()
    names = np.asarray(b.target_names)[b.target]
    p = tmp_path / "iris.csv"
    lines = ["a,b,c,d,species", *(",".join([*map(str, r), n]) for r, n in zip(b.data, names, strict=True))]
    p.write_text("\n".join(lines[:1] + lines[:50:-1]))  # virginica first: its sorted index differs
    by_csv = evaluate(reg, "iris", str(p), latency=False)
    assert by_csv.metrics["accuracy"] > 0.9 and by_csv.n_samples == 100


def test_image_folder_with_a_pixel_classifier(reg: Registry, tmp_path: Path) -> None:
    """Dark vs light images, classified by mean pixel, through a graph with a label and a probability output."""
    from onnx import TensorProto, helper
    from PIL import Image

    for cls, values in (("dark", (5, 20, 40)), ("light", (200, 220, 250))):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for v in values:
            buf = io.BytesIO()
            Image.new("L", (4, 4), v).save(buf, format="PNG")
            (tmp_path / "data" / cls / f"{v}.png").write_bytes(buf.getvalue())
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4, 4, 1])
    out = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["n", 2])
    nodes = [  # p(light) = mean pixel / 255
        helper.make_node("ReduceMean", ["x", "axes"], ["mean"], keepdims=0),
        helper.make_node("Unsqueeze", ["mean", "one"], ["column"]),
        helper.make_node("Mul", ["column", "inv255"], ["light"]),
        helper.make_node("Sub", ["ones", "light"], ["dark"]),
        helper.make_node("Concat", ["dark", "light"], ["probabilities"], axis=1),
    ]
    inits = [
        helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3]),
        helper.make_tensor("one", TensorProto.INT64, [1], [1]),
        helper.make_tensor("inv255", TensorProto.FLOAT, [], [1 / 255]),
        helper.make_tensor("ones", TensorProto.FLOAT, [], [1.0]),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "bright", [x], [out], initializer=inits), opset_imports=[helper.make_opsetid("", 18)]
    )
    sig = Signature((TensorSpec("x", "FP32", (-1, 4, 4, 1)),), (TensorSpec("probabilities", "FP32", (-1, 2)),))
    reg.publish("bright", {"model.onnx": model.SerializeToString()}, signature=sig,
                config={"labels": ["dark", "light"]})
    report = evaluate(reg, "bright", str(tmp_path / "data"), latency=False)
    assert report.task == "classification" and report.n_samples == 6
    assert report.metrics["accuracy"] == 1.0 and report.metrics["roc_auc_ovr"] == 1.0


def test_write_report_json_and_html(reg: Registry, publish: Any, tmp_path: Path) -> None:
    publish("iris")
    publish("diabetes")
    for ref, data, plots in (("iris", "sklearn:iris", 2), ("diabetes", "sklearn:diabetes", 2)):
        report = evaluate(reg, ref, data, latency=ref == "iris")
        paths = write_report(report, tmp_path / ref)
        assert json.loads(paths["json"].read_text()) == json.loads(json.dumps(report.to_dict()))
        page = paths["html"].read_text()
        assert page.count("data:image/png;base64,") == plots and "<script" not in page and "http" not in page
        assert report.ref in page
    assert "Confusion matrix" in (tmp_path / "iris" / "report.html").read_text()
    assert "Residuals" in (tmp_path / "diabetes" / "report.html").read_text()
    (tmp_path / "file").write_text("")
    with pytest.raises(InvalidArgument, match="cannot write the report"):
        write_report(report, tmp_path / "file")


def test_compare_versions_side_by_side(reg: Registry, publish: Any) -> None:
    publish("iris")
    publish("iris")
    data = load_dataset("sklearn:iris?split=test")
    reports = compare(reg, ["iris:1", "iris:2"], data, latency=False)
    assert [r.ref for r in reports] == ["iris:1", "iris:2"]
    assert reports[0].metrics == reports[1].metrics and reports[0].fingerprint == data.fingerprint


def test_user_errors(reg: Registry, publish: Any, tmp_path: Path) -> None:
    publish("iris")
    with pytest.raises(InvalidArgument, match="unknown task"):
        evaluate(reg, "iris", "sklearn:iris", task="ranking")
    np.savez(tmp_path / "nolabels.npz", x=np.zeros((3, 4)))
    with pytest.raises(InvalidArgument, match="no targets"):
        evaluate(reg, "iris", str(tmp_path / "nolabels.npz"))
    with pytest.raises(InvalidArgument, match="do not fit"):
        evaluate(reg, "iris", "sklearn:wine", latency=False)
    np.savez(tmp_path / "bad.npz", x=np.zeros((3, 4)), y=np.array([0, 1, 7]))
    with pytest.raises(InvalidArgument, match="outside 0..2"):
        evaluate(reg, "iris", str(tmp_path / "bad.npz"), latency=False)
    with pytest.raises(InvalidArgument, match="one prediction per row"):
        evaluate(reg, "iris", "sklearn:iris", task="regression", latency=False)
