"""TensorFlow extra: SavedModel directories and .tflite files imported through tf2onnx with parity against
TensorFlow, and TFLite export from a version's Keras source. Skipped when TensorFlow is not installed."""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import pytest

from maas import formats
from maas.errors import FailedPrecondition, InvalidArgument

from .conftest import assert_empty

os.environ.setdefault("KERAS_BACKEND", "torch")  # what the keras importer sets; TF must not change it
tf = pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")


class _Mlp(tf.Module):
    """A 64-16-10 softmax classifier in plain TensorFlow (no Keras), fixed random weights."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self.w1 = tf.Variable(rng.standard_normal((64, 16)).astype(np.float32) / 8)
        self.w2 = tf.Variable(rng.standard_normal((16, 10)).astype(np.float32) / 4)

    @tf.function(input_signature=[tf.TensorSpec([None, 64], tf.float32, name="pixels")])
    def serve(self, pixels):
        return {"probs": tf.nn.softmax(tf.nn.relu(pixels @ self.w1) @ self.w2)}


@pytest.fixture(scope="module")
def mlp():
    return _Mlp()


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, mlp):
    d = tmp_path_factory.mktemp("tf") / "mlp"
    tf.saved_model.save(mlp, str(d), signatures={"serving_default": mlp.serve})
    return d


@pytest.fixture(scope="module")
def tflite_file(tmp_path_factory, mlp):
    conv = tf.lite.TFLiteConverter.from_concrete_functions([mlp.serve.get_concrete_function()], mlp)
    path = tmp_path_factory.mktemp("tflite") / "mlp.tflite"
    path.write_bytes(conv.convert())
    return path


def _onnx_run(registry, v, x):
    sess = ort.InferenceSession(str(registry.artifact_path(v)), providers=["CPUExecutionProvider"])
    return sess.run(None, {v.signature.inputs[0].name: x})[0]


@pytest.mark.parametrize("fmt", ["auto", "savedmodel"])
def test_saved_model_directory(registry, saved_model, mlp, digits, fmt):
    v = formats.import_file(registry, saved_model, name="mlp", options=formats.ImportOptions(format=fmt))
    assert v.source_format == "tensorflow"
    assert v.parity["passed"] and v.parity["reference"] == "tensorflow" and v.parity["max_abs_err"] < 1e-5
    assert v.signature.inputs[0].shape == (-1, 64) and v.signature.outputs[0].shape == (-1, 10)
    assert v.signature.outputs[0].name == "probs" and v.signature.batch_axis
    x = digits[1][:50]
    np.testing.assert_allclose(_onnx_run(registry, v, x), mlp.serve(tf.constant(x))["probs"].numpy(), atol=1e-5)


def test_tflite_file(registry, tflite_file, mlp, digits):
    v = formats.import_file(registry, tflite_file, name="mlp-lite")
    assert v.source_format == "tflite" and v.parity["reference"] == "tflite"
    assert v.parity["passed"] and v.parity["max_abs_err"] < 1e-5
    assert {a.role for a in v.artifacts} == {"model.onnx", "source.tflite"}
    x = digits[1][:50]
    got = _onnx_run(registry, v, x) if v.signature.batch_axis else _onnx_run(registry, v, x[:1])
    want = mlp.serve(tf.constant(x[: len(got)]))["probs"].numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_saved_model_reading_files_needs_trust(registry, tmp_path):
    class Reader(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def serve(self, x):
            return {"y": x + 0.0 * tf.cast(tf.strings.length(tf.io.read_file("/etc/hostname")), tf.float32)}

    m = Reader()
    tf.saved_model.save(m, str(tmp_path / "reader"), signatures={"serving_default": m.serve})
    with pytest.raises(InvalidArgument, match="ReadFile"):
        formats.import_file(registry, tmp_path / "reader", name="reader")
    assert_empty(registry)


def test_damaged_tflite_is_refused(registry, tmp_path, tflite_file):
    (tmp_path / "cut.tflite").write_bytes(tflite_file.read_bytes()[:100])
    (tmp_path / "junk.tflite").write_bytes(b"\0" * 64)
    for name in ("cut.tflite", "junk.tflite"):
        with pytest.raises(InvalidArgument):
            formats.import_file(registry, tmp_path / name, name="bad")
    assert_empty(registry)


@pytest.mark.parametrize("filename", ["mlp.keras", "cnn.h5"])
def test_tflite_export_from_keras_source_matches_the_onnx_model(registry, tmp_path, digits, filename):
    import keras

    from maas.formats import tf_runtime

    assert keras.backend.backend() == "torch"
    keras.utils.set_random_seed(0)
    layers = keras.layers
    if filename == "cnn.h5":  # the seed CNN's layers, NHWC, untrained
        x = np.repeat(np.repeat(digits[1][:20].reshape(-1, 8, 8, 1), 3, axis=1), 3, axis=2)[:, 2:-2, 2:-2]
        model = keras.Sequential([
            keras.Input((20, 20, 1)), layers.Conv2D(8, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
            layers.Flatten(), layers.Dense(10, activation="softmax"),
        ])
    else:
        x = digits[1][:20]
        model = keras.Sequential([keras.Input((64,)), layers.Dense(16, activation="relu"), layers.Dense(10)])
    model.save(tmp_path / filename)
    v = formats.import_file(registry, tmp_path / filename, name="km")
    out = formats.export(registry, "km", "tflite", tmp_path)
    assert out == tmp_path / "km-1.tflite"
    got = tf_runtime.run_tflite(out.read_bytes(), [x.astype(np.float32)])[0]
    np.testing.assert_allclose(got, _onnx_run(registry, v, x.astype(np.float32)), atol=1e-5)
    assert keras.backend.backend() == "torch"


def test_saved_model_in_a_tar_gz(registry, tmp_path, saved_model, mlp, digits):
    import tarfile

    with tarfile.open(tmp_path / "mlp.tar.gz", "w:gz") as tf_archive:
        tf_archive.add(saved_model, "mlp")
    v = formats.import_file(registry, tmp_path / "mlp.tar.gz", name="mlp",
        options=formats.ImportOptions(format="savedmodel"))
    assert v.source_format == "tensorflow" and v.parity["passed"]
    x = digits[1][:5]
    np.testing.assert_allclose(_onnx_run(registry, v, x), mlp.serve(tf.constant(x))["probs"].numpy(), atol=1e-5)


def test_tflite_export_without_a_keras_source_is_a_failed_precondition(registry, saved_model, tmp_path):
    formats.import_file(registry, saved_model, name="mlp")
    with pytest.raises(FailedPrecondition, match="keeps no .keras or .h5 source file"):
        formats.export(registry, "mlp", "tflite", tmp_path / "x.tflite")
    assert not (tmp_path / "x.tflite").exists()
