"""Keras importer: the tutorial CNN from .h5 and .keras, Lambda layers and damaged archives refused."""

from __future__ import annotations

import json
import os
import re
import zipfile

import numpy as np
import onnxruntime as ort
import pytest

from maas import formats
from maas.errors import InvalidArgument

from .conftest import assert_empty

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

pytestmark = [
    # the tutorial passes input_shape to the first layer, which Keras 3 discourages
    pytest.mark.filterwarnings("ignore:Do not pass an `input_shape`:UserWarning"),
]


def _to_28(x8: np.ndarray) -> np.ndarray:
    """8x8 digits (0..1) -> 28x28x1: each pixel repeated 4x4 to 32x32, then centre-cropped."""
    big = np.repeat(np.repeat(x8.reshape(-1, 8, 8), 4, axis=1), 4, axis=2)
    return big[:, 2:30, 2:30, None].astype(np.float32)


@pytest.fixture(scope="module")
def cnn_files(tmp_path_factory, digits):
    from keras.layers import Conv2D, Dense, Flatten, MaxPooling2D
    from keras.models import Sequential

    x_train, x_test, y_train, _ = digits
    keras.utils.set_random_seed(0)
    model = Sequential(
        [
            Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
            MaxPooling2D((2, 2)),
            Flatten(),
            Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(_to_28(x_train), y_train, epochs=2, batch_size=64, verbose=0)
    d = tmp_path_factory.mktemp("keras")
    model.save(d / "model.h5")
    model.save(d / "model.keras")
    expected = np.asarray(model.predict(_to_28(x_test), verbose=0))
    return d, expected


@pytest.mark.parametrize("filename", ["model.h5", "model.keras"])
def test_seed_cnn_predictions_match_keras(registry, digits, cnn_files, filename):
    d, expected = cnn_files
    _, x_test, _, y_test = digits
    v = formats.import_file(registry, d / filename, name="digits-cnn")
    assert v.source_format == "keras"
    assert v.parity["passed"] and v.parity["max_abs_err"] < 1e-5
    sig = v.signature
    assert sig.inputs[0].shape == (-1, 28, 28, 1) and sig.inputs[0].datatype == "FP32"
    assert sig.outputs[0].shape == (-1, 10) and sig.batch_axis
    # the Dense layer's name (Keras numbers repeats in a process: dense, dense_1…), not the exporter's "45"
    assert re.fullmatch(r"dense(_\d+)?", sig.outputs[0].name)
    assert v.config["max_batch_size"] == 64
    assert {a.role for a in v.artifacts} == {"model.onnx", f"source.{filename.split('.')[1]}"}

    sess = ort.InferenceSession(str(registry.artifact_path(v)), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sig.inputs[0].name: _to_28(x_test)})[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert (got.argmax(1) == expected.argmax(1)).all()
    assert (got.argmax(1) == y_test).mean() > 0.8


def test_sidecar_yaml_supplies_defaults_and_flags_win(registry, tmp_path, cnn_files):
    import shutil

    d, _ = cnn_files
    shutil.copy(d / "model.keras", tmp_path / "model.keras")
    (tmp_path / "maas.yaml").write_text(
        "description: from yaml\nlabels: [a, b, c, d, e, f, g, h, i, j]\nmax_batch_size: 8\n"
        "tags: {team: vision, stage: dev}\n"
        "preprocess: [{op: decode_image, mode: L}, {op: resize, size: [28, 28]},"
        " {op: scale, factor: 0.0039}]\n"
        "postprocess: [{op: softmax}, {op: topk, k: 3}, {op: labels}]\n"
    )
    v = formats.import_file(registry, tmp_path / "model.keras", name="cnn",
        options=formats.ImportOptions(tags={"stage": "prod"}))
    assert v.description == "from yaml"
    assert v.config["labels"][0] == "a" and v.config["max_batch_size"] == 8
    assert v.tags == {"team": "vision", "stage": "prod"}
    assert v.config["preprocess"][1] == {"op": "resize", "size": [28, 28]}
    assert v.config["postprocess"][1] == {"op": "topk", "k": 3}


def _rewrite_zip(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info.filename, edit(info.filename, data))


def test_lambda_layer_is_refused_before_loading(registry, tmp_path, cnn_files):
    d, _ = cnn_files

    def add_lambda(name, data):
        if name != "config.json":
            return data
        cfg = json.loads(data)
        cfg["config"]["layers"].append({"class_name": "Lambda", "config": {"name": "evil", "function": "x"}})
        return json.dumps(cfg).encode()

    _rewrite_zip(d / "model.keras", tmp_path / "evil.keras", add_lambda)
    with pytest.raises(InvalidArgument, match="Lambda"):
        formats.import_file(registry, tmp_path / "evil.keras", name="evil")
    assert_empty(registry)


def test_archive_entry_escaping_is_refused(registry, tmp_path, cnn_files):
    d, _ = cnn_files
    path = tmp_path / "escape.keras"
    with zipfile.ZipFile(d / "model.keras") as zin, zipfile.ZipFile(path, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info))
        zout.writestr("../../etc/evil", b"x")
    with pytest.raises(InvalidArgument, match="unsafe archive entry"):
        formats.import_file(registry, path, name="escape")
    assert_empty(registry)


def test_decompression_bomb_is_refused(registry, tmp_path):
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", b"{}")
        zf.writestr("model.weights.h5", b"\0" * (16 << 20))
    with pytest.raises(InvalidArgument, match="decompression bomb"):
        formats.import_file(registry, path, name="bomb")
    assert_empty(registry)


@pytest.mark.parametrize("filename", ["model.h5", "model.keras"])
def test_truncated_file_is_refused(registry, tmp_path, cnn_files, filename):
    d, _ = cnn_files
    data = (d / filename).read_bytes()
    path = tmp_path / filename
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidArgument) as err:
        formats.import_file(registry, path, name="broken")
    assert "\n" not in err.value.message
    assert_empty(registry)


def test_wrong_format_flag_is_refused(registry, cnn_files):
    d, _ = cnn_files
    with pytest.raises(InvalidArgument, match="does not look like format .onnx."):
        formats.import_file(registry, d / "model.keras", name="x", options=formats.ImportOptions(format="onnx"))
    assert_empty(registry)


def _h5_with_config(path):
    import h5py

    f = h5py.File(path, "w")
    f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"layers": []}})
    return f


def test_h5_bombs_and_outside_data_are_refused_before_keras_reads_them(registry, tmp_path):
    with _h5_with_config(tmp_path / "bomb.h5") as f:  # 4 GB declared, nothing stored
        f.create_dataset("w", shape=(1 << 30,), dtype="f4", chunks=(1 << 20,), compression="gzip")
    with pytest.raises(InvalidArgument, match="decompression bomb"):
        formats.import_file(registry, tmp_path / "bomb.h5", name="bomb")
    with _h5_with_config(tmp_path / "link.h5") as f:
        import h5py

        f["w"] = h5py.ExternalLink("/etc/passwd", "/x")
    with pytest.raises(InvalidArgument, match="links to another file"):
        formats.import_file(registry, tmp_path / "link.h5", name="link")
    with _h5_with_config(tmp_path / "ext.h5") as f:
        f.create_dataset("w", shape=(4,), dtype="f4", external=[(str(tmp_path / "raw.bin"), 0, 16)])
    with pytest.raises(InvalidArgument, match="outside the file"):
        formats.import_file(registry, tmp_path / "ext.h5", name="ext")
    assert_empty(registry)


def test_h5_weights_past_the_upload_limit_are_refused(tmp_path):
    from maas.errors import PayloadTooLarge
    from maas.formats import keras as keras_format

    with _h5_with_config(tmp_path / "big.h5") as f:
        f.create_dataset("w", data=np.random.default_rng(0).standard_normal(4096).astype("f4"))
    with pytest.raises(PayloadTooLarge, match="declares 16384 bytes"):
        keras_format.load(tmp_path / "big.h5", trust=False, limit=10_000)
