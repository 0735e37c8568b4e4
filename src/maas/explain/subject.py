"""What an explanation is about: one version's scores as a function of the inputs *as the user sees them*.

For a model whose pre-processing decodes images, that space is the decoded (and resized) pixels, so a PNG
sent to the digits model is explained pixel by pixel of the picture; the remaining array steps (scale,
normalize, layout, cast) run inside the scoring function. Otherwise it is the tensors the client sends.
The subject owns its own onnxruntime session: explanations never borrow the serving instances.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from maas import processing
from maas.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument
from maas.numbers import is_ascii_int
from maas.registry import ModelVersion, Registry
from maas.serving.loaded import onnxruntime_factory
from maas.serving.runtime import Runtime
from maas.serving.steps import Postprocessor, Preprocessor
from maas.types import TensorSpec, numpy_dtype

IMAGE_OPS = ("decode_image", "resize", "center_crop")
CHUNK_ROWS = 256  # rows per session run: large enough to amortise a call, small enough to check deadlines


@dataclass
class Space:
    """Inputs in the space attributions are given in, and the map from there to the model's own inputs."""

    arrays: dict[str, np.ndarray]  # by input name, [rows, ...], float64
    to_model: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
    image: bool  # True: each array row is an HxWxC picture a person can look at

    @property
    def rows(self) -> int:
        return int(next(iter(self.arrays.values())).shape[0])

    def flatten(self, arrays: dict[str, np.ndarray] | None = None) -> np.ndarray:
        arrays = self.arrays if arrays is None else arrays
        return np.concatenate([a.reshape(a.shape[0], -1) for a in arrays.values()], axis=1).astype(np.float64)

    def unflatten(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        out, start = {}, 0
        for name, a in self.arrays.items():
            size = int(np.prod(a.shape[1:], dtype=np.int64))
            out[name] = flat[:, start:start + size].reshape((flat.shape[0], *a.shape[1:]))
            start += size
        return out

    def feature_names(self) -> list[str]:
        names: list[str] = []
        single = len(self.arrays) == 1
        for name, a in self.arrays.items():
            size = int(np.prod(a.shape[1:], dtype=np.int64))
            names += [str(i) if single else f"{name}[{i}]" for i in range(size)]
        return names


class Subject:
    """One version opened for explaining. `scores` is thread-safe (runs are serialised on the session)."""

    def __init__(self, registry: Registry, version: ModelVersion, max_image_pixels: int) -> None:
        self.version = version
        self.registry = registry
        config = version.config or {}
        self.labels = tuple(str(label) for label in config.get("labels") or ())
        self.runtime: Runtime = onnxruntime_factory(registry.read_artifact(version), 1, False)
        self._lock = threading.Lock()
        self.model_inputs: tuple[TensorSpec, ...] = self.runtime.inputs
        steps = processing.parse_pre(config.get("preprocess"))
        dumped = [s.model_dump() for s in steps]
        self.preprocess = Preprocessor(dumped, max_image_pixels)
        self.image_steps = Preprocessor([d for d in dumped if d["op"] in IMAGE_OPS], max_image_pixels)
        self.array_steps = Preprocessor([d for d in dumped if d["op"] not in IMAGE_OPS], max_image_pixels)
        post = config.get("postprocess")
        self.postprocess = Postprocessor(post, self.labels, self.runtime.outputs[0]) if post else None
        self.output = explained_output(self.runtime.outputs)
        self.deadline = float("inf")
        self.evals = 0
        self.running = threading.Lock()  # one explanation at a time per subject: deadline and counters are its own

    @property
    def decodes(self) -> bool:
        return self.preprocess.decodes

    def close(self) -> None:
        self.runtime.close()

    # --- spaces ------------------------------------------------------------------------------------------
    def space(self, arrays: dict[str, np.ndarray]) -> Space:
        """Validated request arrays (or data set rows by input name) -> the space to attribute in."""
        first = self.model_inputs[0].name
        if self.decodes and first in arrays and arrays[first].dtype == object:
            pixels = self.image_steps(arrays[first]).astype(np.float64)
            return Space({first: pixels}, self._from_pixels, image=True)
        if any(np.asarray(a).dtype == object for a in arrays.values()):
            raise InvalidArgument(
                f"{self.version.ref} takes numeric tensors, not encoded images (it has no decode_image step)"
            )
        numeric = {n: np.asarray(a, dtype=np.float64) for n, a in arrays.items()}
        if self.decodes:  # a ready tensor for an image model: explained as the model sees it
            return Space(numeric, self._fit, image=False)
        return Space(numeric, self._from_client, image=False)

    def _from_pixels(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        first = self.model_inputs[0].name
        pixels = arrays[first].astype(np.float32)
        return self._fit({first: self.array_steps(pixels) if self.array_steps else pixels})

    def _from_client(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.preprocess:
            first = self.model_inputs[0].name
            arrays = {**arrays, first: self.preprocess(arrays[first].astype(np.float32))}
        return self._fit(arrays)

    def _fit(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for spec in self.model_inputs:
            dtype = numpy_dtype(spec.datatype)
            value = arrays[spec.name]
            want = spec.shape[1:]
            if value.shape[1:] != want and all(d > 0 for d in want) and value[0].size == np.prod(want):
                value = value.reshape((value.shape[0], *want))  # e.g. 64 digits pixels -> 1x8x8
            if np.issubdtype(dtype, np.integer):
                value = np.rint(value)
            out[spec.name] = np.ascontiguousarray(value, dtype=dtype)
        return out

    # --- scoring -----------------------------------------------------------------------------------------
    def scores(self, space: Space, flat: np.ndarray) -> np.ndarray:
        """Scores [rows, classes] of the explained output for rows given flat in `space`."""
        if time.monotonic() > self.deadline:
            raise DeadlineExceeded(f"{self.version.ref}: the explanation ran past its time limit")
        flat = np.atleast_2d(flat)
        self.evals += int(flat.shape[0])
        parts = []
        fixed = self._fixed_batch()
        step = fixed or CHUNK_ROWS
        for start in range(0, flat.shape[0], step):
            if time.monotonic() > self.deadline:
                raise DeadlineExceeded(f"{self.version.ref}: the explanation ran past its time limit")
            chunk = space.to_model(space.unflatten(flat[start:start + step]))
            parts.append(self._run(chunk))
        return np.concatenate(parts).astype(np.float64)

    def predict(self, space: Space) -> np.ndarray:
        return self.scores(space, space.flatten())

    def _run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        with self._lock:
            outputs = self.runtime.run(inputs)
        if self.postprocess is not None:
            outputs = self.postprocess(outputs)
        value = np.asarray(outputs[self.output.name])
        return value.reshape(value.shape[0], -1) if value.ndim != 1 else value.reshape(-1, 1)

    def _fixed_batch(self) -> int | None:
        dims = {s.shape[0] for s in self.model_inputs if s.shape}
        return next((d for d in dims if d > 0), None)

    def target_index(self, target: Any, n_classes: int) -> int | None:
        """A class index from a request's `target` (an index or one of the version's labels); None: argmax."""
        if target is None:
            return None
        if isinstance(target, str) and not is_ascii_int(target.removeprefix("-")):
            if target not in self.labels:
                raise InvalidArgument(f"target {target!r} is not one of the model's labels {list(self.labels)[:20]}")
            index = self.labels.index(target)
        elif isinstance(target, bool) or not isinstance(target, int | str):
            raise InvalidArgument("target must be a class index or label")
        else:
            index = int(target)
        if not 0 <= index < n_classes:
            raise InvalidArgument(
                f"target {index} is out of range: output {self.output.name!r} has {n_classes} "
                f"value(s) per row (0-{n_classes - 1})"
            )
        return index


def explained_output(outputs: tuple[TensorSpec, ...]) -> TensorSpec:
    """The first floating-point output: the scores (scikit-learn's classifiers put the label tensor first)."""
    for spec in outputs:
        if spec.datatype in ("FP32", "FP64", "FP16"):
            return spec
    raise FailedPrecondition("the model has no floating-point output to explain")
