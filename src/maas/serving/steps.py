"""Executes the declarative pre/post-processing steps of `maas.processing` (data, never user code).

Pre-processing turns what a client sends (e.g. PNG bytes in a BYTES tensor) into the model's input;
post-processing adds outputs a client can read directly (top-k indices and scores, labels).
Both run in the inference thread pool, never on the event loop.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from maas import processing
from maas.errors import InvalidArgument
from maas.types import TensorSpec

TOPK_INDICES = "topk_indices"
TOPK_SCORES = "topk_scores"
LABELS = "labels"
_IMAGE_FORMATS = ("PNG", "JPEG")
_CAST = {
    "FP32": np.float32,
    "FP16": np.float16,
    "FP64": np.float64,
    "INT64": np.int64,
    "INT32": np.int32,
    "UINT8": np.uint8,
}


class Preprocessor:
    """The pre-steps of one version, applied to its single input."""

    def __init__(self, steps: Any, max_pixels: int) -> None:
        self.steps = processing.parse_pre(steps)
        self.max_pixels = max_pixels
        self.decodes = any(isinstance(s, processing.DecodeImage) for s in self.steps)
        if self.steps and self.decodes and not isinstance(self.steps[0], processing.DecodeImage):
            raise InvalidArgument("decode_image must be the first preprocess step")

    def __bool__(self) -> bool:
        return bool(self.steps)

    def __call__(self, data: np.ndarray) -> np.ndarray:
        images: list[Any] | None = None
        array = data
        layout = "NHWC"
        for step in self.steps:
            if isinstance(step, processing.DecodeImage):
                images = [self._decode(item, step.mode) for item in data.reshape(-1)]
            elif isinstance(step, processing.Resize | processing.CenterCrop):
                if images is None:
                    raise InvalidArgument(f"{step.op} needs decode_image before it")
                images = [
                    _resize(i, step.size) if isinstance(step, processing.Resize) else _crop(i, step.size)
                    for i in images
                ]
            else:
                if images is not None:
                    array, images = _stack(images), None
                array, layout = _array_step(step, array, layout)
        if images is not None:
            array = _stack(images)
        return array

    def _decode(self, item: Any, mode: str) -> Any:
        from PIL import Image

        if not isinstance(item, bytes | bytearray):
            raise InvalidArgument("decode_image expects PNG or JPEG bytes in a BYTES tensor")
        try:
            image = Image.open(io.BytesIO(item), formats=_IMAGE_FORMATS)
        except Exception:  # Pillow raises several types for unreadable data; its messages show reprs
            raise InvalidArgument("cannot decode the image: not a readable PNG or JPEG") from None
        width, height = image.size
        if width * height > self.max_pixels:  # checked from the header, before any pixel is decoded
            raise InvalidArgument(f"image of {width}x{height} pixels exceeds the limit of {self.max_pixels}")
        try:
            return image.convert(mode)
        except Exception:
            raise InvalidArgument("cannot decode the image: its pixel data is damaged or truncated") from None


def _resize(image: Any, size: Sequence[int]) -> Any:
    from PIL import Image

    height, width = size
    return image.resize((width, height), Image.Resampling.BILINEAR)


def _crop(image: Any, size: Sequence[int]) -> Any:
    height, width = size
    if image.height < height or image.width < width:
        raise InvalidArgument(
            f"image of {image.width}x{image.height} is smaller than the crop {width}x{height}"
        )
    left, top = (image.width - width) // 2, (image.height - height) // 2
    return image.crop((left, top, left + width, top + height))


def _stack(images: list[Any]) -> np.ndarray:
    """Pixels as NHWC uint8; every image of one request must end up the same size."""
    if len({i.size for i in images}) > 1:
        raise InvalidArgument(
            "images of one request have different sizes; add a resize step or send one size"
        )
    arrays = [np.asarray(i) for i in images]
    array = np.stack(arrays)
    return array[..., np.newaxis] if array.ndim == 3 else array


def _channel_shape(layout: str, ndim: int, channels: int) -> tuple[int, ...]:
    """Shape that broadcasts per-channel values over an array in `layout`."""
    if layout == "NCHW":
        return (1, channels) + (1,) * (ndim - 2)
    return (channels,) if layout == "NHWC" else (1,)


def _array_step(step: Any, array: np.ndarray, layout: str) -> tuple[np.ndarray, str]:
    if not np.issubdtype(array.dtype, np.number):
        raise InvalidArgument(f"{step.op} needs a numeric tensor")
    if isinstance(step, processing.Scale):
        return array.astype(np.float32) * np.float32(step.factor), layout
    if isinstance(step, processing.Normalize):
        if len(step.mean) != len(step.std):
            raise InvalidArgument("normalize needs as many std values as mean values")
        shape = _channel_shape(layout, array.ndim, len(step.mean))
        mean = np.asarray(step.mean, np.float32).reshape(shape)
        std = np.asarray(step.std, np.float32).reshape(shape)
        return (array.astype(np.float32) - mean) / std, layout
    if isinstance(step, processing.Layout):
        return _relayout(array, layout, step.to), step.to
    if isinstance(step, processing.Cast):
        return array.astype(_CAST[step.datatype]), layout
    raise InvalidArgument(f"unsupported preprocess step {step.op!r}")


def _relayout(array: np.ndarray, current: str, target: str) -> np.ndarray:
    if current != "NHWC" or array.ndim != 4:
        raise InvalidArgument(
            f"layout expects an NHWC image batch, got {current} with shape {list(array.shape)}"
        )
    if target == "NCHW":
        return np.ascontiguousarray(array.transpose(0, 3, 1, 2))
    if target == "NHW":
        if array.shape[3] != 1:
            raise InvalidArgument("layout NHW needs single-channel images (decode_image mode L)")
        return np.ascontiguousarray(array[..., 0])
    return array


class Postprocessor:
    """The post-steps of one version, applied to its first output; adds top-k and label outputs."""

    def __init__(self, steps: Any, labels: Sequence[str], primary: TensorSpec) -> None:
        self.steps = processing.parse_post(steps)
        self.labels = [str(label) for label in labels]
        self.primary = primary
        if any(isinstance(s, processing.Labels) for s in self.steps) and not self.labels:
            raise InvalidArgument("postprocess step labels needs the version's config['labels']")

    def output_specs(self, model_outputs: Sequence[TensorSpec]) -> tuple[TensorSpec, ...]:
        """What a client can ask for: the model's outputs plus those the steps add."""
        specs = list(model_outputs)
        lead = self.primary.shape[:-1]
        k: int | None = None
        for step in self.steps:
            if isinstance(step, processing.Softmax):
                specs = [
                    TensorSpec(s.name, "FP32", s.shape) if s.name == self.primary.name else s for s in specs
                ]
            elif isinstance(step, processing.TopK):
                k = step.k
                specs += [
                    TensorSpec(TOPK_INDICES, "INT64", (*lead, -1)),
                    TensorSpec(TOPK_SCORES, "FP32", (*lead, -1)),
                ]
            elif isinstance(step, processing.Labels):
                specs.append(TensorSpec(LABELS, "BYTES", (*lead, -1) if k is not None else lead))
        return tuple(dict((s.name, s) for s in specs).values())

    def __call__(self, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = dict(outputs)
        scores = outputs[self.primary.name]
        indices: np.ndarray | None = None
        for step in self.steps:
            if isinstance(step, processing.Softmax):
                scores = softmax(scores, step.axis)
                outputs[self.primary.name] = scores
            elif isinstance(step, processing.TopK):
                indices, top = topk(scores, step.k)
                outputs[TOPK_INDICES], outputs[TOPK_SCORES] = indices, top.astype(np.float32)
            elif isinstance(step, processing.Labels):
                chosen = indices if indices is not None else np.argmax(scores, axis=-1)
                outputs[LABELS] = self.label_array(chosen)
        return outputs

    def label_array(self, indices: np.ndarray) -> np.ndarray:
        out = np.empty(indices.shape, dtype=object)
        flat = out.reshape(-1)
        for i, index in enumerate(indices.reshape(-1)):
            flat[i] = self.label(int(index)).encode()
        return out

    def label(self, index: int) -> str:
        return self.labels[index] if 0 <= index < len(self.labels) else str(index)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = x.astype(np.float32)
    shifted = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return shifted / np.sum(shifted, axis=axis, keepdims=True)


def topk(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (int64) and values of the k largest along the last axis, largest first, ties by index."""
    k = min(k, x.shape[-1])
    order = np.argsort(-x.astype(np.float64), axis=-1, kind="stable")[..., :k].astype(np.int64)
    return order, np.take_along_axis(x, order, axis=-1)
