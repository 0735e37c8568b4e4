"""Tiny real models for the evaluation tests: scikit-learn estimators converted with skl2onnx, published to
a fresh registry per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maas.registry import Registry
from maas.types import ONNX_TO_V2, Signature, TensorSpec


def signature_of(model: Any) -> Signature:
    """The signature as the importers would record it, read from the ONNX graph."""

    def spec(v: Any) -> TensorSpec:
        t = v.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim)
        return TensorSpec(v.name, ONNX_TO_V2[t.elem_type], dims)

    return Signature(tuple(spec(i) for i in model.graph.input), tuple(spec(o) for o in model.graph.output))


def to_onnx(estimator: Any, n_features: int) -> Any:
    from skl2onnx import to_onnx as convert
    from skl2onnx.common.data_types import FloatTensorType

    options = {type(estimator): {"zipmap": False}} if hasattr(estimator, "predict_proba") else None
    return convert(
        estimator, initial_types=[("input", FloatTensorType([None, n_features]))], options=options,
        target_opset=17,
    )


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Signature, Any]]:
    """name -> (onnx path, signature, fitted estimator), built once per session."""
    from sklearn.datasets import load_diabetes, load_digits, load_iris
    from sklearn.linear_model import LogisticRegression, Ridge
    from threadpoolctl import threadpool_limits

    out: dict[str, tuple[Path, Signature, Any]] = {}
    root = tmp_path_factory.mktemp("models")
    for name, loader, est in [
        ("iris", load_iris, LogisticRegression(max_iter=500)),
        ("digits", load_digits, LogisticRegression(max_iter=300)),
        ("diabetes", load_diabetes, Ridge(alpha=0.1)),
    ]:
        bunch = loader()
        x = bunch.data.astype(np.float32) / (16 if name == "digits" else 1)  # digits: the version declares scale
        with threadpool_limits(1):  # BLAS threads on 2 shared cores make lbfgs ~60x slower
            est.fit(x, bunch.target)
        model = to_onnx(est, bunch.data.shape[1])
        path = root / f"{name}.onnx"
        path.write_bytes(model.SerializeToString())
        out[name] = (path, signature_of(model), est)
    return out


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    r = Registry.open(tmp_path / "home")
    yield r
    r.close()


@pytest.fixture
def publish(reg: Registry, models: dict[str, Any]) -> Any:
    """publish("iris", **config) -> the new version of that model, labelled like the data set."""
    from sklearn import datasets

    def go(name: str, **config: Any) -> Any:
        path, signature, _ = models[name]
        if name == "digits" and "preprocess" not in config:
            config["preprocess"] = [{"op": "scale", "factor": 1 / 16}]
        if name != "diabetes" and "labels" not in config:
            config["labels"] = [str(n) for n in getattr(datasets, f"load_{name}")().target_names]
        return reg.publish(name, {"model.onnx": path}, signature=signature, config=config, source_format="sklearn")

    return go
