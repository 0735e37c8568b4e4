"""TF-Serving style v1 :predict, row (`instances`) and columnar (`inputs`) formats."""

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from .models import linear_model

X = [[1, 2, 3, 4], [-1, 0.5, 0, 2]]


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client


def reference():
    s = ort.InferenceSession(linear_model(), providers=["CPUExecutionProvider"])
    return s.run(None, {"x": np.array(X, dtype=np.float32)})


def test_instances_give_row_predictions(http):
    resp = http.post("/v1/models/linear:predict", json={"instances": X})
    assert resp.status_code == 200, resp.text
    y, label = reference()
    rows = resp.json()["predictions"]
    assert [r["label"] for r in rows] == label.tolist()
    np.testing.assert_allclose([r["y"] for r in rows], y, rtol=1e-6)


def test_named_instances_and_version(http):
    resp = http.post("/v1/models/linear/versions/1:predict", json={"instances": [{"x": row} for row in X]})
    assert resp.status_code == 200, resp.text
    assert [r["label"] for r in resp.json()["predictions"]] == reference()[1].tolist()


def test_columnar_inputs_give_outputs(http):
    resp = http.post("/v1/models/linear:predict", json={"inputs": {"x": X}})
    out = resp.json()["outputs"]
    np.testing.assert_allclose(out["y"], reference()[0], rtol=1e-6)
    resp = http.post("/v1/models/linear:predict", json={"inputs": X})
    assert resp.json()["outputs"]["label"] == reference()[1].tolist()


def test_bytes_instances(http):
    doc = {"instances": [{"s": "a", "i": 1, "h": 0.5, "b": True}, {"s": "é", "i": 2, "h": 1.0, "b": False}]}
    rows = http.post("/v1/models/echo:predict", json=doc).json()["predictions"]
    assert [r["out_s"] for r in rows] == ["a", "é"]
    assert [r["out_b"] for r in rows] == [True, False]


@pytest.mark.parametrize(
    "doc, fragment",
    [
        ({}, "exactly one"),
        ({"instances": X, "inputs": X}, "exactly one"),
        ({"instances": []}, "non-empty"),
        ({"instances": [[1, 2, 3, 4], [1, 2]]}, "ragged"),
        ({"instances": [{"q": 1}]}, "unknown input"),
        ({"instances": [{"x": [1, 2, 3, 4]}, {"y": 1}]}, "same inputs"),
        ({"instances": [1, 2]}, "must be an object"),
    ],
)
def test_bad_bodies(http, doc, fragment):
    model = "echo" if doc.get("instances") == [1, 2] else "linear"
    resp = http.post(f"/v1/models/{model}:predict", json=doc)
    assert resp.status_code == 400, resp.text
    assert fragment in resp.json()["error"]


def test_unknown_model(http):
    resp = http.post("/v1/models/nope:predict", json={"instances": X})
    assert resp.status_code == 404 and "nope" in resp.json()["error"]
