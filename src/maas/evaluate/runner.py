"""Runs a registry version on a data set the way the server would: an onnxruntime session on the verified
artifact, the version's declared pre-processing, then the inputs fitted to its signature, in batches.
It uses the serving core's own runtime and pre-processing, so evaluated numbers are what clients get.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from maas.errors import FailedPrecondition, InvalidArgument
from maas.types import TensorSpec, numpy_dtype

DEFAULT_BATCH = 256


def _open_runtime(model: bytes | str | os.PathLike[str]) -> Any:
    from maas.serving.runtime import OnnxRuntime

    return OnnxRuntime(model)


def _preprocessor(steps: Any) -> Any:
    from maas.serving.options import ServingOptions
    from maas.serving.steps import Preprocessor

    return Preprocessor(steps, ServingOptions().max_image_pixels)


class Runner:
    """One version opened for evaluation: `prepare` turns data set rows into model input, `run` executes."""

    def __init__(self, registry: Any, version: Any) -> None:
        self.version = version
        self.runtime = _open_runtime(registry.read_artifact(version))
        if len(self.runtime.inputs) != 1:
            raise FailedPrecondition(
                f"{version.ref} has {len(self.runtime.inputs)} inputs; evaluation supports single-input models"
            )
        self.input: TensorSpec = self.runtime.inputs[0]
        self.pre = _preprocessor(version.config.get("preprocess"))
        self.max_batch_size = int(version.config.get("max_batch_size") or 0)

    def close(self) -> None:
        self.runtime.close()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def default_batch_size(self) -> int:
        if self.input.shape and self.input.shape[0] > 0:
            return self.input.shape[0]  # a fixed batch dimension
        return self.max_batch_size or DEFAULT_BATCH

    def prepare(self, x: np.ndarray) -> np.ndarray:
        """Data set rows -> the model's input: pre-processing, image decoding if needed, shape and dtype."""
        if x.dtype == object and not self.pre.decodes:
            x = self._decode_for_signature(x)
        if x.dtype == object or not self.pre.decodes:
            x = self.pre(x)
        # else: ready tensors for an image-decoding model skip the image steps, as the server does
        return _fit(x, self.input)

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        return self.runtime.run({self.input.name: batch})

    def predict(self, x: np.ndarray, batch_size: int | None = None) -> dict[str, np.ndarray]:
        return self.predict_prepared(self.prepare(x), batch_size)

    def predict_prepared(self, prepared: np.ndarray, batch_size: int | None = None) -> dict[str, np.ndarray]:
        size = batch_size or self.default_batch_size()
        if size < 1:
            raise InvalidArgument("batch size must be at least 1")
        parts: dict[str, list[np.ndarray]] = {}
        for start in range(0, len(prepared), size):
            for name, value in self.run(prepared[start:start + size]).items():
                parts.setdefault(name, []).append(value)
        return {name: np.concatenate(vs) if vs[0].ndim else vs[0] for name, vs in parts.items()}

    def _decode_for_signature(self, x: np.ndarray) -> np.ndarray:
        """Pixels for a version that takes pixels: mode and size read from its input shape."""
        from maas.evaluate.datasets import decode_images

        shape = self.input.shape
        if len(shape) == 4 and shape[1] in (1, 3) and shape[3] not in (1, 3):  # NCHW
            channels, hw = shape[1], shape[2:4]
        elif len(shape) == 4:
            channels, hw = shape[3], shape[1:3]
        elif len(shape) == 3:
            channels, hw = 1, shape[1:3]
        else:
            channels, hw = 1, None
        size = (int(hw[0]), int(hw[1])) if hw is not None and min(hw) > 0 else None
        return decode_images(x, "RGB" if channels == 3 else "L", size)


def _fit(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Reshape rows to the signature (e.g. 64 pixels -> 1x8x8, NHWC -> NCHW) and cast to its datatype."""
    want = spec.shape[1:]
    if want and (x.shape[1:] != want) and all(d > 0 for d in want):
        if x.ndim == 4 and len(want) == 3 and x.shape[1:] == (want[1], want[2], want[0]):
            x = x.transpose(0, 3, 1, 2)
        elif int(np.prod(x.shape[1:])) == int(np.prod(want)):
            x = x.reshape((len(x), *want))
        else:
            raise InvalidArgument(
                f"data rows of shape {list(x.shape[1:])} do not fit the model input {spec.name!r} "
                f"of shape {list(spec.shape)}"
            )
    return np.ascontiguousarray(x, dtype=numpy_dtype(spec.datatype))


def predict(registry: Any, version: Any, x: np.ndarray, *, batch_size: int | None = None) -> dict[str, np.ndarray]:
    """Every output of `version` on the rows of `x`, concatenated over batches."""
    with Runner(registry, version) as runner:
        return runner.predict(x, batch_size)


def find_probabilities(outputs: dict[str, np.ndarray], n_classes: int | None) -> str | None:
    """The name of the float output holding one score per class (last dim == number of classes)."""
    candidates = [
        name for name, v in outputs.items()
        if v.ndim == 2 and np.issubdtype(v.dtype, np.floating) and (n_classes is None or v.shape[1] == n_classes)
    ]
    return candidates[0] if candidates else None


def find_labels(outputs: dict[str, np.ndarray], skip: Sequence[str] = ()) -> str | None:
    """The name of a one-per-row label output (integer indices or class-name strings), if the model has one."""
    for name, v in outputs.items():
        if name in skip:
            continue
        if (v.ndim == 1 or (v.ndim == 2 and v.shape[1] == 1)) and (
            np.issubdtype(v.dtype, np.integer) or v.dtype.kind in ("U", "S", "O")
        ):
            return name
    return None
