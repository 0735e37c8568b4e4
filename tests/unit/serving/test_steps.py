"""Pre/post steps as pure functions and the classification strings."""

from __future__ import annotations

import numpy as np
import pytest

from maas.errors import InvalidArgument
from maas.serving.classification import classification_k, classify
from maas.serving.steps import Postprocessor, Preprocessor, softmax, topk
from maas.types import TensorSpec

from . import serving_models as models


def test_decode_resize_crop_normalize_and_layout_produce_nchw_floats() -> None:
    pre = Preprocessor(
        [
            {"op": "decode_image", "mode": "RGB"},
            {"op": "resize", "size": [6, 8]},
            {"op": "center_crop", "size": [4, 4]},
            {"op": "scale", "factor": 1 / 255},
            {"op": "normalize", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
            {"op": "layout", "to": "NCHW"},
        ],
        max_pixels=10_000,
    )
    out = pre(np.array([models.png(255), models.png(0)], dtype=object))
    assert out.shape == (2, 3, 4, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], 1.0, atol=1e-6)
    np.testing.assert_allclose(out[1], -1.0, atol=1e-6)


def test_an_unreadable_image_is_refused_without_a_python_repr() -> None:
    pre = Preprocessor([{"op": "decode_image", "mode": "L"}], max_pixels=10_000)
    truncated = models.png(128)[:40]
    for junk in (b"not an image", truncated):
        with pytest.raises(InvalidArgument, match="cannot decode the image") as caught:
            pre(np.array([junk], dtype=object))
        assert "<" not in caught.value.message and "0x" not in caught.value.message


def test_layout_nhw_and_cast_on_numeric_input() -> None:
    pre = Preprocessor([{"op": "layout", "to": "NHW"}, {"op": "cast", "datatype": "FP32"}], max_pixels=1)
    out = pre(np.ones((2, 3, 3, 1), dtype=np.uint8))
    assert out.shape == (2, 3, 3) and out.dtype == np.float32


def test_misplaced_or_impossible_steps_are_invalid() -> None:
    with pytest.raises(InvalidArgument):
        Preprocessor([{"op": "scale", "factor": 2}, {"op": "decode_image"}], max_pixels=1)
    with pytest.raises(InvalidArgument):
        Preprocessor([{"op": "resize", "size": [2, 2]}], max_pixels=1)(np.zeros((1, 2, 2, 1), np.uint8))
    with pytest.raises(InvalidArgument, match="smaller"):
        Preprocessor([{"op": "decode_image"}, {"op": "center_crop", "size": [99, 99]}], max_pixels=10_000)(
            np.array([models.png(1)], dtype=object)
        )
    with pytest.raises(InvalidArgument, match="different sizes"):
        Preprocessor([{"op": "decode_image"}], max_pixels=10_000)(
            np.array([models.png(1), models.png(1, size=(4, 4))], dtype=object)
        )
    with pytest.raises(InvalidArgument, match="labels"):
        Postprocessor([{"op": "labels"}], [], TensorSpec("y", "FP32", (-1, 3)))


def test_softmax_topk_and_labels() -> None:
    scores = softmax(np.array([[1.0, 3.0, 2.0]], dtype=np.float32))
    np.testing.assert_allclose(scores.sum(), 1.0, rtol=1e-6)
    indices, values = topk(np.array([[1.0, 3.0, 3.0, 0.0]]), 3)
    assert indices.tolist() == [[1, 2, 0]] and values.tolist() == [[3.0, 3.0, 1.0]]
    post = Postprocessor([{"op": "labels"}], ["a", "b", "c"], TensorSpec("y", "FP32", (-1, 3)))
    out = post({"y": np.array([[0.1, 0.7, 0.2], [0.9, 0.0, 0.1]], dtype=np.float32)})
    assert out["labels"].tolist() == [b"b", b"a"]
    assert [s.name for s in post.output_specs([TensorSpec("y", "FP32", (-1, 3))])] == ["y", "labels"]


def test_classification_strings_with_and_without_labels() -> None:
    data = np.array([[0.25, 0.5, 0.125]], dtype=np.float32)
    assert classify(data, 2, ["x", "y"], batched=True).tolist() == [[b"0.500000:1:y", b"0.250000:0:x"]]
    assert classify(data[0], 1, [], batched=False).tolist() == [b"0.500000:1"]
    assert classification_k({"classification": "3"}) == 3 and classification_k({}) is None
    for bad in (0, True, "x", 1.5):
        with pytest.raises(InvalidArgument):
            classification_k({"classification": bad})

