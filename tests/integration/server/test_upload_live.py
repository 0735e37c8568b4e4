"""Upload through the control API of a real server with real models: the seed Keras CNN (.h5) and a
scikit-learn .skops file go up with `maas.Client.import_file`, and tritonclient.http then gets the same
predictions from the server as onnxruntime gives on the stored model."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from maas import Client
from maas.config import Settings
from maas.testing.live_server import LiveServer, live_server

os.environ.setdefault("KERAS_BACKEND", "torch")
httpclient = pytest.importorskip("tritonclient.http")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Do not pass an `input_shape`:UserWarning"),
]


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    datasets = pytest.importorskip("sklearn.datasets")
    from sklearn.model_selection import train_test_split

    x, y = datasets.load_digits(return_X_y=True)
    return train_test_split((x / 16.0).astype(np.float32), y, test_size=0.25, random_state=0)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(Settings(home=tmp_path_factory.mktemp("home"))) as srv:
        yield srv


def _to_28(x8: np.ndarray) -> np.ndarray:
    """8x8 digits -> 28x28x1, as in the unit tests' seed CNN."""
    big = np.repeat(np.repeat(x8.reshape(-1, 8, 8), 4, axis=1), 4, axis=2)
    return big[:, 2:30, 2:30, None].astype(np.float32)


def _stored_predictions(client: Client, ref: str, tmp: Path, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    path = client.download(ref, tmp / f"{ref.replace(':', '-')}.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, inputs)


def _triton_predictions(server: LiveServer, name: str, version: int, x: np.ndarray, outputs: list[str]) -> list:
    triton = httpclient.InferenceServerClient(server.http_target)
    try:
        meta = triton.get_model_metadata(name, str(version))
        inp = httpclient.InferInput(meta["inputs"][0]["name"], list(x.shape), "FP32")
        inp.set_data_from_numpy(x, binary_data=True)
        wanted = [httpclient.InferRequestedOutput(o, binary_data=True) for o in outputs]
        result = triton.infer(name, [inp], model_version=str(version), outputs=wanted)
        return [result.as_numpy(o) for o in outputs]
    finally:
        triton.close()


def test_keras_h5_upload_serves_the_same_predictions(server: LiveServer, digits, tmp_path: Path) -> None:
    keras = pytest.importorskip("keras")
    from keras.layers import Conv2D, Dense, Flatten, MaxPooling2D

    x_train, x_test, y_train, y_test = digits
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        MaxPooling2D((2, 2)),
        Flatten(),
        Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(_to_28(x_train), y_train, epochs=1, batch_size=64, verbose=0)
    model.save(tmp_path / "cnn.h5")
    keras_out = np.asarray(model.predict(_to_28(x_test[:32]), verbose=0))

    with Client(server.http_url) as client:
        v = client.import_file(tmp_path / "cnn.h5", name="digits-cnn")
    assert (v.model, v.version, v.source_format) == ("digits-cnn", 1, "keras")
    sig = v.signature
    assert sig is not None and sig.batch_axis
    assert (sig.inputs[0].datatype, sig.inputs[0].shape) == ("FP32", (-1, 28, 28, 1))
    assert sig.outputs[0].shape == (-1, 10)
    assert v.parity["passed"] and v.parity["reference"] == "keras" and v.parity["max_abs_err"] < 1e-5
    assert {a.role for a in v.artifacts} == {"model.onnx", "source.h5"}

    x = _to_28(x_test[:32])
    out = sig.outputs[0].name
    with Client(server.http_url) as client:
        (stored,) = _stored_predictions(client, v.ref, tmp_path, {sig.inputs[0].name: x})
    (served,) = _triton_predictions(server, "digits-cnn", 1, x, [out])
    np.testing.assert_allclose(served, stored, atol=1e-6)
    np.testing.assert_allclose(stored, keras_out, atol=1e-5)
    assert (served.argmax(1) == y_test[:32]).mean() > 0.7


def test_skops_upload_serves_the_same_predictions(server: LiveServer, digits, tmp_path: Path) -> None:
    pytest.importorskip("skl2onnx")
    sio = pytest.importorskip("skops.io")
    from sklearn.linear_model import LogisticRegression

    x_train, x_test, y_train, y_test = digits
    clf = LogisticRegression(max_iter=500).fit(x_train, y_train)
    sio.dump(clf, tmp_path / "digits.skops")

    with Client(server.http_url) as client:
        v = client.import_file(tmp_path / "digits.skops", name="digits-lr")
    assert v.source_format == "skops" and v.parity["passed"] and v.parity["reference"] == "skops"
    sig = v.signature
    assert sig is not None and sig.batch_axis and sig.inputs[0].shape == (-1, 64)
    assert [o.datatype for o in sig.outputs] == ["INT64", "FP32"]
    assert sig.outputs[1].shape == (-1, 10)

    x = x_test[:40]
    names = [o.name for o in sig.outputs]
    with Client(server.http_url) as client:
        stored = _stored_predictions(client, v.ref, tmp_path, {sig.inputs[0].name: x})
    served = _triton_predictions(server, "digits-lr", v.version, x, names)
    np.testing.assert_array_equal(served[0], stored[0])
    np.testing.assert_allclose(served[1], stored[1], atol=1e-6)
    np.testing.assert_array_equal(served[0], clf.predict(x))
    assert (served[0] == y_test[:40]).mean() > 0.9


def test_saved_model_archive_upload_serves_the_same_predictions(server: LiveServer, digits, tmp_path: Path) -> None:
    """Only with the tensorflow extra: a SavedModel directory travels as one .tar.gz."""
    import tarfile

    tf = pytest.importorskip("tensorflow")
    pytest.importorskip("tf2onnx")

    class Linear(tf.Module):
        def __init__(self) -> None:
            self.w = tf.Variable(np.random.default_rng(0).standard_normal((64, 10)).astype(np.float32) / 8)

        @tf.function(input_signature=[tf.TensorSpec([None, 64], tf.float32, name="pixels")])
        def serve(self, pixels):  # type: ignore[no-untyped-def]
            return {"scores": pixels @ self.w}

    m = Linear()
    tf.saved_model.save(m, str(tmp_path / "sm"), signatures={"serving_default": m.serve})
    with tarfile.open(tmp_path / "linear.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "sm", "linear")

    with Client(server.http_url) as client:
        v = client.import_file(tmp_path / "linear.tar.gz", name="digits-tf")
    assert v.source_format == "tensorflow" and v.parity["passed"] and v.parity["reference"] == "tensorflow"
    sig = v.signature
    assert sig is not None and sig.batch_axis
    assert [(t.name, t.shape) for t in sig.inputs + sig.outputs] == [("pixels", (-1, 64)), ("scores", (-1, 10))]

    x = digits[1][:16]
    with Client(server.http_url) as client:
        (stored,) = _stored_predictions(client, v.ref, tmp_path, {"pixels": x})
    (served,) = _triton_predictions(server, "digits-tf", v.version, x, ["scores"])
    np.testing.assert_allclose(served, stored, atol=1e-6)
    np.testing.assert_allclose(stored, m.serve(tf.constant(x))["scores"].numpy(), atol=1e-5)
