"""Encryption at rest, end to end: after importing a model whose weights hold a known byte pattern (directly
and as a background job), no file under MAAS_HOME contains it; the model serves correctly; a flipped byte
in its blob, a wrong key or a missing key make that version fail to load with a clear error naming it,
while a model that is still readable keeps serving."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import httpx
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from maas.config import Settings
from maas.testing.live_server import live_server

from .models import linear_model

WIDTH = 64
W = np.random.default_rng(20261201).standard_normal((4, WIDTH)).astype(np.float32)
PATTERN = W.tobytes()[:48]  # 48 bytes of weights: no file may hold them in the clear
X = np.array([[1, 2, 3, 4], [-1, 0.5, 0, 2]], dtype=np.float32)


def secret_model(graph_name: str = "secret") -> bytes:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], graph_name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", WIDTH])],
        [helper.make_tensor("W", TensorProto.FLOAT, [4, WIDTH], W.tobytes(), raw=True)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _files_holding(root: Path, pattern: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and pattern in p.read_bytes()]


def _infer(base: str, name: str) -> httpx.Response:
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": list(X.shape), "data": X.ravel().tolist()}]}
    return httpx.post(f"{base}/v2/models/{name}/infer", json=body, timeout=30)


def _index(base: str) -> dict[str, dict[str, str]]:
    entries = httpx.post(f"{base}/v2/repository/index", json={}, timeout=30).json()
    return {e["name"]: e for e in entries}


def _upload(base: str, name: str, data: bytes, background: bool = False) -> httpx.Response:
    return httpx.post(
        f"{base}/api/v1/models/{name}/versions", params={"background": str(background).lower()},
        files={"file": ("model.onnx", data, "application/octet-stream")}, headers={"X-Requested-With": "test"},
        timeout=120,
    )


def _wait_job(base: str, job_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = httpx.get(f"{base}/api/v1/jobs/{job_id}", timeout=30).json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return dict(job)
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def _wait_loaded(base: str, names: set[str]) -> dict[str, dict[str, str]]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        index = _index(base)
        if names <= set(index) and all(index[n]["state"] != "LOADING" and index[n].get("version") for n in names):
            return index
        time.sleep(0.1)
    raise AssertionError(f"{names} not loaded: {_index(base)}")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home holding the secret model (uploaded directly and through a background job) and a second one."""
    home = tmp_path_factory.mktemp("encrypted-home")
    with live_server(Settings(home=home)) as srv:
        assert _upload(srv.http_url, "secret", secret_model()).status_code == 201
        job = _upload(srv.http_url, "staged", secret_model("staged"), background=True)  # a blob of its own
        assert job.status_code == 202, job.text
        assert _wait_job(srv.http_url, job.json()["id"])["state"] == "succeeded"
        assert _upload(srv.http_url, "other", linear_model()).status_code == 201
        _wait_loaded(srv.http_url, {"secret", "staged", "other"})
        got = _infer(srv.http_url, "secret")
        assert got.status_code == 200, got.text
        want = ort.InferenceSession(secret_model(), providers=["CPUExecutionProvider"]).run(None, {"x": X})[0]
        np.testing.assert_allclose(np.array(got.json()["outputs"][0]["data"]).reshape(2, WIDTH), want, rtol=1e-6)
    return home


def test_no_file_under_the_home_holds_the_weights(home: Path) -> None:
    assert PATTERN in secret_model()  # the pattern is real: the plaintext model does contain it
    assert (home / "artifacts").is_dir() and any((home / "artifacts" / "sha256").rglob("*"))
    assert _files_holding(home, PATTERN) == []
    key_file = home / "keys" / "master.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert not key_file.is_relative_to(home / "artifacts")


def test_a_flipped_byte_fails_that_version_only(home: Path) -> None:
    from maas.registry import Registry

    with Registry(Settings(home=home)) as reg:
        sha = reg.get("secret").artifact("model.onnx").sha256
    blob = home / "artifacts" / "sha256" / sha[:2] / sha[2:]
    original = blob.read_bytes()
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0x01
    blob.write_bytes(bytes(flipped))
    try:
        with live_server(Settings(home=home)) as srv:
            index = _wait_loaded(srv.http_url, {"secret", "other"})
            assert index["secret"]["state"] == "UNAVAILABLE"
            assert "secret:1" in index["secret"]["reason"] and "authentication" in index["secret"]["reason"]
            refused = _infer(srv.http_url, "secret")
            assert refused.status_code == 503 and "secret:1" in refused.json()["error"]
            assert _infer(srv.http_url, "other").status_code == 200
    finally:
        blob.write_bytes(original)


def test_a_wrong_or_missing_key_is_named_and_the_server_still_starts(home: Path) -> None:
    wrong = base64.b64encode(bytes(32)).decode()
    with live_server(Settings(home=home, master_key=wrong)) as srv:
        index = _wait_loaded(srv.http_url, {"secret", "other"})
        assert index["secret"]["state"] == "UNAVAILABLE"
        assert "secret:1" in index["secret"]["reason"] and "MAAS_MASTER_KEY" in index["secret"]["reason"]
    key_file = home / "keys" / "master.key"
    moved = key_file.with_name("elsewhere")
    key_file.rename(moved)
    try:
        with live_server(Settings(home=home)) as srv:
            index = _wait_loaded(srv.http_url, {"secret", "other"})
            assert "does not exist" in index["other"]["reason"] and "other:1" in index["other"]["reason"]
        assert not key_file.exists()  # never replaced by a new key that could not open the old blobs
    finally:
        moved.rename(key_file)
