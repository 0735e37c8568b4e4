"""ONNX importer: single files, bundles with external data (kept inside the bundle), damaged files."""

from __future__ import annotations

import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from maas import formats
from maas.errors import InvalidArgument, PayloadTooLarge

from .conftest import assert_empty


def _linear(batch="N") -> onnx.ModelProto:
    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 10, "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3])],
        [w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_onnx_file_signature_and_export(registry, tmp_path):
    path = tmp_path / "linear.onnx"
    onnx.save(_linear(), path)
    v = formats.import_file(registry, path, name="linear", options=formats.ImportOptions(labels=["a", "b", "c"]))
    assert v.source_format == "onnx" and v.parity["passed"] and v.parity["samples"] == 4
    assert v.signature.to_dict() == {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 3]}],
        "batch_axis": True,
    }
    assert v.config == {"labels": ["a", "b", "c"], "max_batch_size": 64}
    out = formats.export(registry, "linear", "onnx", tmp_path / "out.onnx")
    onnx.checker.check_model(onnx.load(out))


def test_fixed_batch_means_no_batching(registry):
    v = formats.register(registry, _linear(batch=1), name="fixed")
    assert not v.signature.batch_axis and v.config["max_batch_size"] == 0


def test_bundle_with_external_data_is_stored_self_contained(registry, tmp_path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    onnx.save(
        _linear(), bundle / "model.onnx", save_as_external_data=True, location="weights.bin", size_threshold=0
    )
    assert (bundle / "weights.bin").exists()
    v = formats.import_file(registry, bundle, name="bundle")
    stored = onnx.load_from_string(registry.read_artifact(v))
    assert not any(t.data_location == TensorProto.EXTERNAL for t in stored.graph.initializer)


def test_external_data_outside_the_bundle_is_refused(registry, tmp_path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    onnx.save(
        _linear(),
        tmp_path / "outside.onnx",
        save_as_external_data=True,
        location="secret.bin",
        size_threshold=0,
    )
    model = onnx.load(tmp_path / "outside.onnx", load_external_data=False)
    for entry in model.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = "../secret.bin"
    onnx.save(model, bundle / "model.onnx")
    with pytest.raises(InvalidArgument, match="outside the model's directory"):
        formats.import_file(registry, bundle, name="escape")
    assert_empty(registry)


def test_corrupt_and_truncated_files_are_refused(registry, tmp_path):
    data = _linear().SerializeToString()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.onnx").write_bytes(b"\x00garbage" * 10)
    for name in ("cut.onnx", "junk.onnx"):
        with pytest.raises(InvalidArgument):
            formats.import_file(registry, tmp_path / name, name="bad")
    assert_empty(registry)


def test_invalid_graph_is_refused(registry, tmp_path):
    model = _linear()
    model.graph.node[0].input[1] = "missing"
    onnx.save(model, tmp_path / "bad.onnx")
    with pytest.raises(InvalidArgument, match="failed validation"):
        formats.import_file(registry, tmp_path / "bad.onnx", name="bad")
    assert_empty(registry)


def test_oversize_file_is_refused(tmp_path):
    from maas.registry import Registry

    onnx.save(_linear(), tmp_path / "m.onnx")
    with Registry.open(tmp_path / "home", max_upload_bytes=10) as reg:
        with pytest.raises(PayloadTooLarge, match="over the limit of 10 bytes set by MAAS_MAX_UPLOAD_BYTES"):
            formats.import_file(reg, tmp_path / "m.onnx", name="big")
        assert_empty(reg)


def test_tensorflow_formats_need_the_extra(registry, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # as if not installed, whether it is or not
    (tmp_path / "m.tflite").write_bytes(b"\0\0\0\0TFL3")
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"")
    needs = r"^\S.* needs the tensorflow extra: pip install 'maas\[tensorflow\]'$"
    with pytest.raises(InvalidArgument, match=needs):
        formats.import_file(registry, tmp_path / "m.tflite", name="t")
    with pytest.raises(InvalidArgument, match=needs):
        formats.import_file(registry, tmp_path / "sm", name="t")
    with pytest.raises(InvalidArgument, match=needs):
        formats.export(registry, "t", "tflite", tmp_path / "x.tflite")
    assert_empty(registry)


def test_bad_options_are_refused(registry, tmp_path):
    onnx.save(_linear(), tmp_path / "m.onnx")
    with pytest.raises(InvalidArgument, match="postprocess"):
        formats.import_file(registry, tmp_path / "m.onnx", name="m",
            options=formats.ImportOptions(postprocess=[{"op": "exec"}]))
    with pytest.raises(InvalidArgument, match="unknown format"):
        formats.import_file(registry, tmp_path / "m.onnx", name="m", options=formats.ImportOptions(format="caffe"))
    with pytest.raises(InvalidArgument, match="sample_input"):
        formats.import_file(registry, tmp_path / "m.onnx", name="m",
            options=formats.ImportOptions(sample_input=np.zeros((2, 5))))
    assert_empty(registry)
