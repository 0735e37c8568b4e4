"""The console's layout of real reports: an evaluation of the linear test model on iris (metrics, per-class
figures from its confusion matrix, the heat map, latency by batch), its dynamic-quantize child's optimization
report (parent vs child, the gate's verdict, the transform's parameters), both side by side, and a trained
version's record (test metrics, k-fold scores, search). Fields the layout does not know are still shown."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maas.config import Settings
from maas.console.pages import environment
from maas.console.reports import shared_evaluations, version_reports
from maas.evaluate import evaluate
from maas.optimize import optimize
from maas.registry import Registry

from ..models import linear_model
from .fixtures import LINEAR_CONFIG, LINEAR_SIGNATURE

TEMPLATE = '{% import "reports.html" as rep %}{{ rep.all(r) }}'


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(parent's metrics, child's metrics) after a real evaluation of each and a real optimize run."""
    home = tmp_path_factory.mktemp("reports-home")
    registry = Registry(Settings(home=home))
    try:
        model = home / "linear.onnx"
        model.write_bytes(linear_model())
        registry.publish("iris", {"model.onnx": model}, signature=LINEAR_SIGNATURE, source_format="onnx",
                         config=dict(LINEAR_CONFIG))
        evaluate(registry, "iris:1", "sklearn:iris")
        child = optimize(registry, "iris:1", quantize="dynamic", data="sklearn:iris", max_accuracy_drop=0.05)
        evaluate(registry, child.version.ref, "sklearn:iris", latency=False)
        yield registry.get("iris:1").metrics, registry.get(child.version.ref).metrics
    finally:
        registry.close()


def render(reports: dict[str, Any]) -> str:
    return environment().from_string(TEMPLATE).render(r=reports)


def cells(html: str, row_attr: str) -> list[str]:
    row = re.search(rf'<tr {row_attr}>(.*?)</tr>', html, re.S)
    assert row is not None, row_attr
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row.group(1), re.S)]


def test_an_evaluation_is_a_metrics_table_a_per_class_table_and_a_heat_map(evaluated: Any) -> None:
    parent, _ = evaluated
    reports = version_reports(parent)
    (e,) = reports["evaluations"]
    raw = next(v for k, v in parent.items() if k.startswith("eval:"))
    assert dict(e.metrics)["accuracy"] == raw["metrics"]["accuracy"]
    matrix = raw["metrics"]["confusion_matrix"]
    for i, row in enumerate(e.per_class):  # recall of a class is its diagonal share of its true row
        assert row["support"] == sum(matrix[i])
        assert row["recall"] == pytest.approx(matrix[i][i] / sum(matrix[i]) if sum(matrix[i]) else 0.0)
    assert [r["class"] for r in e.per_class] == LINEAR_CONFIG["labels"]
    assert [r["batch_size"] for r in e.latency][0] == 1 and all(r["p50_ms"] > 0 for r in e.latency)
    html = render(reports)
    assert cells(html, 'data-metric="accuracy"') == ["accuracy", f"{raw['metrics']['accuracy']:.4g}"]
    heat = re.findall(r'<td style="--heat: ([0-9.]+)"[^>]*>(\d+)</td>', html)
    assert [int(c) for _, c in heat] == [c for r in matrix for c in r]
    assert "Latency by batch size" in html and "data-chart=" in html


def test_an_optimization_is_parent_against_child_with_the_gates_verdict(evaluated: Any) -> None:
    parent, child = evaluated
    raw = child["optimize"]
    o = version_reports(child)["optimization"]
    assert o.transform == "quantize" and ("mode", "dynamic") in o.params
    sizes = next(r for r in o.rows if r["figure"] == "size_bytes")
    assert (sizes["parent"], sizes["child"]) == (raw["parent"]["size_bytes"], raw["child"]["size_bytes"])
    assert sizes["delta"] == raw["child"]["size_bytes"] - raw["parent"]["size_bytes"]
    assert sizes["ratio"] == raw["comparison"]["size_ratio"]
    assert o.passed is True and "within the allowed 0.05" in o.verdict
    html = render(version_reports(child))
    assert 'id="gate-verdict"' in html and "Parent vs child" in html and "op_types" in html
    assert cells(html, 'data-figure="accuracy"')[4] == f"accuracy_drop {raw['comparison']['accuracy_drop']:.4g}"


def test_unknown_fields_are_shown_not_dropped(evaluated: Any) -> None:
    parent, child = evaluated
    key = next(k for k in parent if k.startswith("eval:"))
    future = {**parent, key: {**parent[key], "calibration": {"ece": 0.031}}}
    opt = {**child, "optimize": {**child["optimize"], "energy_joules": 1.5}}
    html = render(version_reports(future)) + render(version_reports(opt))
    assert "calibration" in html and "0.031" in html and "energy_joules" in html and "1.5" in html


def test_two_versions_evaluated_on_the_same_data_are_compared_metric_by_metric(evaluated: Any) -> None:
    parent, child = evaluated
    (shared,) = shared_evaluations(parent, child)
    rows = {m: (x, y, d) for m, x, y, d, _ in shared["rows"]}
    key = next(k for k in parent if k.startswith("eval:"))
    a, b = parent[key]["metrics"]["accuracy"], child[key]["metrics"]["accuracy"]
    assert rows["accuracy"] == (a, b, b - a)


def test_a_trained_versions_record_has_its_folds_and_search(tmp_path: Path) -> None:
    from maas.training import train

    registry = Registry(Settings(home=tmp_path))
    try:
        result = train({"data": {"source": "sklearn:iris"}, "model": {"family": "logistic_regression"},
                        "search": {"trials": 2, "k": 3, "space": {"C": {"type": "loguniform", "low": 0.1,
                                                                          "high": 10}}}},
                       registry=registry, name="trained")
        metrics = registry.get(result.version.ref).metrics
    finally:
        registry.close()
    t = version_reports(metrics)["training"]
    assert t is not None and t.cv is not None
    assert t.cv["folds"] == metrics["cv"]["folds"] and len(t.cv["folds"]) == 3
    assert dict(t.test) == metrics["test"]
    html = render(version_reports(metrics))
    assert "3-fold cross-validation" in html and "best_params" in html and "fold 3" in html


def test_malformed_reports_are_laid_out_without_failing() -> None:
    """Metrics come from several producers and from older or newer releases: a page renders whatever shape
    they have."""
    weird = {
        "eval:x": {"metrics": {"confusion_matrix": [[1, 2], [3]], "accuracy": "high"}, "class_names": "abc",
                   "latency": {"batch_1": {"batch_size": "one", "p50_ms": "x"}, "note": 3}, "size": [1]},
        "eval:y": {"metrics": {"confusion_matrix": [[1, 0], [0, 1]]}, "class_names": [1, 2, 3]},
        "optimize": {"parent": [], "child": {"size_bytes": "big", "accuracy": 1}, "params": "p",
                     "comparison": {"size_ratio": None, "speedup_b1": "fast"}, "gate": {"max_accuracy_drop": "x"}},
        "test": {"a": "b"}, "train_config": {}, "cv": {"folds": "x", "k": None}, "search": 5,
    }
    reports = version_reports(weird)
    html = render(reports)
    assert "high" in html and "big" in html and "fast" in html  # shown as given, not dropped
    (_, square) = reports["evaluations"]
    assert square.classes == ["0", "1"] and square.per_class[0]["recall"] == 1.0  # names that do not fit
    assert reports["evaluations"][0].confusion is None  # a ragged matrix is no heat map
    assert version_reports({"eval:z": "text", "optimize": None, "test": 1}) == {
        "evaluations": [], "training": None, "optimization": None}
    assert shared_evaluations(weird, weird)[0]["rows"] == []
