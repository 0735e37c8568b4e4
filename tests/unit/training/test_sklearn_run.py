"""A scikit-learn run: search, refit, test, and a registered version whose ONNX graph holds the scaler."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest

from maas.training import data, train

CONFIG: dict[str, Any] = {
    "name": "iris", "seed": 3, "data": {"source": "sklearn:iris"},
    "model": {"family": "logistic_regression", "params": {"max_iter": 500}},
    "search": {"trials": 4, "k": 3, "pruner": "none",
               "space": {"C": {"type": "loguniform", "low": 0.001, "high": 100.0}}},
    "register": {"description": "iris classifier", "tags": {"team": "ml"}, "aliases": ["staging"]},
}


def test_search_refit_and_register(reg: Any) -> None:
    events: list[dict[str, Any]] = []
    result = train(CONFIG, registry=reg, progress=events.append)
    v = reg.get("iris@staging")
    assert v.ref == result.version.ref == "iris:1"
    assert v.metrics["test"] == result.test_metrics and result.test_metrics["accuracy"] > 0.85
    assert v.metrics["seed"] == 3 and v.metrics["data"]["fingerprint"] == result.fingerprint
    assert v.tags["train.seed"] == "3" and v.tags["team"] == "ml" and v.description == "iris classifier"
    assert v.config["labels"] == ["setosa", "versicolor", "virginica"]
    assert set(v.metrics["cv"]) >= {"mean", "std", "folds"} and len(v.metrics["cv"]["folds"]) == 3
    assert v.metrics["params"] == result.params and "C" in result.params
    assert result.search is not None and len(result.search["trials"]) == 4
    assert {"best_score", "default_score", "metric"} <= set(result.search)
    assert sum(e["event"] == "trial" for e in events) == 4

    # The scaler is inside the graph: the served model takes raw features and answers as the pipeline did.
    model = onnx.load_from_string(reg.read_artifact(v))
    assert "Scaler" in {n.op_type for n in model.graph.node}
    import onnxruntime as ort

    prep = data.prepare(result_cfg(), data.load_dataset("sklearn:iris", None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    labels, _ = sess.run(None, {"input": prep.x_test})
    assert float(np.mean(labels == prep.y_test)) == pytest.approx(result.test_metrics["accuracy"], abs=1e-6)


def result_cfg() -> Any:
    from maas.training import parse

    return parse(CONFIG)


def test_same_seed_same_metrics(reg: Any) -> None:
    cfg = {**CONFIG, "model": {"family": "random_forest", "params": {"n_estimators": 10}},
           "search": {"trials": 2, "k": 3, "space": {"max_depth": {"type": "int", "low": 2, "high": 6}}}}
    a = train(cfg, registry=reg, name="rf")
    b = train(cfg, registry=reg, name="rf")
    assert (a.version.version, b.version.version) == (1, 2)
    assert a.test_metrics == b.test_metrics and a.cv == b.cv and a.params == b.params


def test_search_beats_or_equals_defaults(reg: Any) -> None:
    """A deliberately bad default (a one-level tree) leaves room that two trials are sure to find."""
    cfg = {**CONFIG, "data": {"source": "sklearn:wine"},
           "model": {"family": "decision_tree", "params": {"max_depth": 1}},
           "search": {"trials": 3, "k": 3, "space": {"max_depth": {"type": "int", "low": 3, "high": 8}}}}
    result = train(cfg, registry=reg, name="wine")
    assert result.search is not None
    assert result.search["best_score"] >= result.search["default_score"] + 0.1


def test_sdk_verb_trains_into_the_default_registry(home: Any) -> None:
    import maas
    from maas.registry import Registry

    config = {**CONFIG, "search": None, "register": {}}
    result = maas.train(config, name="iris-sdk")  # the registry of $MAAS_HOME (the `home` fixture)
    assert result.version.ref == "iris-sdk:1"
    with Registry.open(home) as reg:
        assert reg.get("iris-sdk").metrics["test"] == result.test_metrics
    assert maas.training.train is train
