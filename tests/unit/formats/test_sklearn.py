"""scikit-learn importer: live estimators and pipelines, .skops files, and refusing pickles."""

from __future__ import annotations

import pickle

import numpy as np
import onnxruntime as ort
import pytest

from maas import formats
from maas.errors import InvalidArgument

from .conftest import assert_empty

pytest.importorskip("skl2onnx")


@pytest.fixture(scope="module")
def iris_clf():
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=500).fit(x, y), x.astype(np.float32)


@pytest.fixture(scope="module")
def digits_pipeline(digits):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, _, y_train, _ = digits
    return make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=10, random_state=0)).fit(
        x_train, y_train
    )


def _predict(registry, version, x):
    sess = ort.InferenceSession(str(registry.artifact_path(version)), providers=["CPUExecutionProvider"])
    return sess.run(None, {version.signature.inputs[0].name: x})


def test_classifier_gives_labels_and_probabilities(registry, iris_clf):
    clf, x = iris_clf
    v = formats.register(registry, clf, name="iris",
        options=formats.ImportOptions(tags={"team": "a"}, aliases=["production"]))
    assert v.source_format == "sklearn"
    sig = v.signature.to_dict()
    assert sig["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["datatype"] for o in sig["outputs"]] == ["INT64", "FP32"]
    assert sig["outputs"][1]["shape"] == [-1, 3]
    assert v.signature.batch_axis and v.config["max_batch_size"] == 64
    assert v.config["labels"] == ["0", "1", "2"]
    assert v.parity["passed"] and v.parity["outputs"][0]["exact"] and v.parity["max_abs_err"] < 1e-5
    label, proba = _predict(registry, v, x)
    np.testing.assert_array_equal(label, clf.predict(x))
    np.testing.assert_allclose(proba, clf.predict_proba(x), atol=1e-5)
    assert v.aliases == ("production",) and v.tags == {"team": "a"}


def test_pipeline_on_digits_matches_labels(registry, digits, digits_pipeline):
    _, x_test, _, _ = digits
    v = formats.register(registry, digits_pipeline, name="digits-rf",
        options=formats.ImportOptions(labels=[str(i) for i in range(10)]))
    assert v.signature.inputs[0].shape == (-1, 64)
    label, _ = _predict(registry, v, x_test)
    assert (label == digits_pipeline.predict(x_test)).mean() > 0.99


def test_regressor(registry):
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    x, y = load_diabetes(return_X_y=True)
    v = formats.register(registry, Ridge().fit(x, y), name="diabetes")
    assert v.parity["passed"] and "labels" not in v.config
    assert v.signature.outputs[0].datatype == "FP32"


def test_skops_file_is_imported_with_its_source(registry, tmp_path, iris_clf):
    import skops.io as sio

    path = tmp_path / "iris.skops"
    sio.dump(iris_clf[0], path)
    v = formats.import_file(registry, path, name="iris")
    assert v.source_format == "skops"
    assert {a.role for a in v.artifacts} == {"model.onnx", "source.skops"}


def _square(x):
    return x * x


def test_skops_with_untrusted_types_is_refused(registry, tmp_path):
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    path = tmp_path / "f.skops"
    sio.dump(FunctionTransformer(_square).fit(np.ones((2, 2))), path)
    with pytest.raises(InvalidArgument, match="does not trust"):
        formats.import_file(registry, path, name="f")
    assert_empty(registry)


class _Boom:
    """Unpickling this writes a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("suffix", [".pkl", ".joblib", ".pt"])
def test_pickles_are_refused_before_unpickling(registry, tmp_path, suffix):
    marker = tmp_path / "pwned"
    path = tmp_path / f"model{suffix}"
    path.write_bytes(pickle.dumps(_Boom(str(marker))))
    with pytest.raises(InvalidArgument, match="--trust"):
        formats.import_file(registry, path, name="evil")
    assert not marker.exists()
    assert_empty(registry)


def test_trusted_joblib_is_imported(registry, tmp_path, iris_clf):
    import joblib

    path = tmp_path / "iris.joblib"
    joblib.dump(iris_clf[0], path)
    v = formats.import_file(registry, path, name="iris", options=formats.ImportOptions(trust=True))
    assert v.parity["passed"] and v.source_format == "sklearn"
    assert {a.role for a in v.artifacts} == {"model.onnx", "source.joblib"}


def test_unfitted_estimator_is_refused(registry):
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(InvalidArgument, match="not fitted"):
        formats.register(registry, LogisticRegression(), name="x")
    assert_empty(registry)
