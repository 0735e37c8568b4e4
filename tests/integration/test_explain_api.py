"""`POST /v2/models/{name}/explain` through the real server: httpx with JSON bodies, tritonclient's HTTP
request builder for the binary extension, PNGs for the digits CNN, and every refusal as a 400."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from maas.config import Settings  # noqa: E402
from maas.registry import Registry  # noqa: E402
from maas.testing.live_server import live_server  # noqa: E402

from ..unit.explain.explain_models import digit_png, publish_digits, top_decile_share, two_feature_model

MAX_EVALS = 400
RNG = np.random.default_rng(0)
BACKGROUND = RNG.normal(size=(30, 4)).astype(np.float32)
ROWS = RNG.normal(size=(3, 4)).astype(np.float32)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # A generous time limit: the first Permutation call of a process compiles numba kernels (~9 s, more here).
    settings = Settings(home=tmp_path_factory.mktemp("explain-home"), explain_max_evals=MAX_EVALS,
                        explain_timeout_s=300)
    with Registry(settings) as reg:
        reg.publish("tab", {"model.onnx": two_feature_model()})
        reg.set_explain_background("tab", {"x": BACKGROUND}, source="test rows")
        publish_digits(reg)
    with live_server(settings) as srv:
        yield srv.http_url


def post(base_url: str, model: str, body: dict[str, Any], **kw: Any) -> httpx.Response:
    return httpx.post(f"{base_url}/v2/models/{model}/explain", json=body, timeout=300, **kw)


def tab_body(**parameters: Any) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "datatype": "FP32", "shape": [3, 4], "data": ROWS.ravel().tolist()}],
            "parameters": parameters}


def attributions(doc: dict[str, Any]) -> np.ndarray:
    (tensor,) = doc["attributions"]
    return np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"])


@pytest.mark.parametrize("method", ["kernel", "permutation"])
def test_tabular_shap_finds_the_two_features_and_adds_up(base_url: str, method: str) -> None:
    resp = post(base_url, "tab", tab_body(method=method, max_evals=200))
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    a = attributions(doc)
    assert doc["method"] == method and a.shape == (3, 4)
    assert doc["parameters"]["background"] == "test rows" and doc["parameters"]["background_rows"] == 30
    for row in np.abs(a):
        assert set(np.argsort(row)[-2:]) == {0, 2}
    prediction, base = np.asarray(doc["prediction"]), np.asarray(doc["base_value"])
    np.testing.assert_allclose(a.sum(axis=1), prediction - base, atol=1e-4)
    np.testing.assert_allclose(prediction, ROWS @ np.array([3, 0, -2, 0]) + 1, atol=1e-5)
    np.testing.assert_allclose(base, (BACKGROUND @ np.array([3, 0, -2, 0]) + 1).mean(), atol=1e-4)


def test_default_method_for_tabular_is_shap(base_url: str) -> None:
    doc = post(base_url, "tab", tab_body()).json()
    assert doc["method"] == "kernel" and doc["model_version"] == "1"


def test_binary_body_from_tritonclient(base_url: str) -> None:
    import tritonclient.http as httpclient

    tensor = httpclient.InferInput("x", [3, 4], "FP32")
    tensor.set_data_from_numpy(ROWS, binary_data=True)
    body, json_size = httpclient.InferenceServerClient.generate_request_body(
        [tensor], parameters={"method": "permutation", "max_evals": 100}
    )
    resp = httpx.post(
        f"{base_url}/v2/models/tab/versions/1/explain", content=body, timeout=300,
        headers={"Inference-Header-Content-Length": str(json_size), "Content-Type": "application/octet-stream"},
    )
    assert resp.status_code == 200, resp.text
    a = attributions(resp.json())
    assert set(np.argsort(np.abs(a[0]))[-2:]) == {0, 2}


def png_body(png: bytes, **parameters: Any) -> dict[str, Any]:
    return {"inputs": [{"name": "input", "datatype": "BYTES", "shape": [1], "data": [png.decode("latin-1")]}],
            "parameters": parameters}


def png_request(base_url: str, png: bytes, **parameters: Any) -> httpx.Response:
    import tritonclient.http as httpclient

    tensor = httpclient.InferInput("input", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([png], dtype=object), binary_data=True)
    body, json_size = httpclient.InferenceServerClient.generate_request_body([tensor], parameters=parameters)
    return httpx.post(
        f"{base_url}/v2/models/digits/explain", content=body, timeout=300,
        headers={"Inference-Header-Content-Length": str(json_size)},
    )


@pytest.mark.parametrize("index", [0, 1, 2])
def test_occlusion_heat_lies_on_the_digit(base_url: str, index: int) -> None:
    png, drawn = digit_png(index)
    resp = png_request(base_url, png, heatmap_png=True, window=2)
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    a = attributions(doc)
    assert doc["method"] == "occlusion" and a.shape == (1, 28, 28, 1)  # the picture's pixels, not NCHW
    assert top_decile_share(a[0, ..., 0], drawn) > 0.5
    from PIL import Image

    (heatmap,) = doc["parameters"]["heatmap_png"]
    picture = Image.open(io.BytesIO(base64.b64decode(heatmap)))
    assert picture.format == "PNG" and picture.size[0] >= 224


def test_integrated_gradients_on_the_torch_source(base_url: str) -> None:
    png, drawn = digit_png(0)
    resp = png_request(base_url, png, method="integrated_gradients", max_evals=16)
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    a = attributions(doc)
    assert doc["method"] == "integrated_gradients" and a.shape == (1, 28, 28, 1)
    assert top_decile_share(a[0, ..., 0], drawn) > 0.5


@pytest.mark.parametrize(
    ("model", "parameters", "message"),
    [
        ("tab", {"method": "lime"}, "unknown method 'lime'"),
        ("tab", {"target": 3}, "target 3 is out of range"),
        ("tab", {"baseline": [[0.0, 1.0, 2.0]]}, "background set has 3 columns"),
        ("tab", {"max_evals": MAX_EVALS + 1}, f"over this server's cap of {MAX_EVALS}"),
        ("tab", {"method": "occlusion"}, "explains images"),
        ("tab", {"heatmap_png": True}, "needs an image model"),
        ("tab", {"method": "integrated_gradients"}, "source.pt2"),
        ("tab", {"max_evals": 3, "method": "permutation"}, "too low"),
        ("tab", {"window": -1}, "window must be an integer"),
    ],
)
def test_bad_parameters_are_400(base_url: str, model: str, parameters: dict[str, Any], message: str) -> None:
    resp = post(base_url, model, tab_body(**parameters))
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["error"]


def test_bad_bodies_and_models(base_url: str) -> None:
    assert post(base_url, "nope", tab_body()).status_code == 404
    resp = httpx.post(f"{base_url}/v2/models/tab/explain", content=b"{not json", timeout=10)
    assert resp.status_code == 400
    png, _ = digit_png(0)
    too_many = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [40, 4], "data": [0.0] * 160}]}
    resp = post(base_url, "tab", too_many)
    assert resp.status_code == 400 and "at most 16" in resp.json()["error"]
    resp = post(base_url, "digits", png_body(b"not a png"))
    assert resp.status_code == 400 and "cannot decode" in resp.json()["error"]


def test_past_the_time_limit_is_504_and_inference_goes_on(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, explain_timeout_s=0.001)
    with Registry(settings) as reg:
        reg.publish("tab", {"model.onnx": two_feature_model()})
    with live_server(settings) as srv:
        resp = post(srv.http_url, "tab", tab_body(method="kernel"))
        assert resp.status_code == 504, resp.text
        assert "ran past its 0.001 s limit" in resp.json()["error"]
        infer = httpx.post(f"{srv.http_url}/v2/models/tab/infer", json=tab_body(), timeout=30)
        assert infer.status_code == 200, infer.text
        np.testing.assert_allclose(infer.json()["outputs"][0]["data"], (ROWS @ np.array([3, 0, -2, 0]) + 1),
                                   atol=1e-5)


def test_an_image_model_fed_its_own_tensor(base_url: str) -> None:
    """FP32 [1, 1, 28, 28] instead of a PNG: explained as the model sees it, attributions in NCHW."""
    import tritonclient.http as httpclient

    from maas.testing.digits import digits_arrays

    x, _ = digits_arrays("test")
    tensor = httpclient.InferInput("input", [1, 1, 28, 28], "FP32")
    tensor.set_data_from_numpy(x[:1], binary_data=True)
    body, json_size = httpclient.InferenceServerClient.generate_request_body([tensor], parameters={"window": 2})
    resp = httpx.post(f"{base_url}/v2/models/digits/explain", content=body, timeout=300,
                      headers={"Inference-Header-Content-Length": str(json_size)})
    assert resp.status_code == 200, resp.text
    a = attributions(resp.json())
    assert resp.json()["method"] == "occlusion" and a.shape == (1, 1, 28, 28)
    assert top_decile_share(a[0, 0], x[0, 0] > 0.25) > 0.5
