"""Data for optimization: a data spec read by `maas.evaluate.load_dataset`, shaped for a model's input.

Reading (built-ins, `.npz`, `.npy`, CSV, the fixed `sklearn:NAME:train` / `:test` split) is evaluate's; what
is optimize's own is fitting rows to the model input, including the 8x8 built-in digits to a 28x28 image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maas.errors import InvalidArgument
from maas.evaluate.datasets import load_dataset
from maas.types import Signature, TensorSpec, numpy_dtype

_DIGITS = "sklearn:digits"


@dataclass(frozen=True)
class Dataset:
    """Inputs already shaped for the model's first input; `y` holds integer labels when known."""

    spec: str
    x: np.ndarray
    y: np.ndarray | None


def _read(spec: str, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    loaded = load_dataset(spec)
    if loaded.is_images:
        raise InvalidArgument(f"{what} {spec!r} is an image folder; optimize takes arrays (.npz, .npy) or sklearn:NAME")
    y = loaded.y
    if loaded.task_hint == "regression":
        if what != "calibration data":
            raise InvalidArgument(f"{what} {spec!r} has regression targets; optimize measures top-1 accuracy")
        y = None
    x = loaded.x
    if spec.startswith(_DIGITS) and spec[len(_DIGITS):][:1] in ("", ":", "?"):
        # the built-in digits are 8x8 pixels in 0..16; image models take [0, 1] (see maas.testing.digits)
        x = x.reshape(len(x), 8, 8) / np.float32(16.0)
    return x, y


def _fit_image(x: np.ndarray, want: tuple[int, ...]) -> np.ndarray:
    """Grey images (N, h, w) to a model's single-channel image input: repeat pixels, then centre-crop.

    Lets the 8x8 digits feed a 28x28 (MNIST-shaped) model, NCHW [1, H, W] or NHWC [H, W, 1].
    """
    if len(want) == 3 and want[0] == 1:
        height, width, layout = want[1], want[2], "nchw"
    elif len(want) == 3 and want[2] == 1:
        height, width, layout = want[0], want[1], "nhwc"
    elif len(want) == 2:
        height, width, layout = want[0], want[1], "hw"
    else:
        raise InvalidArgument(f"cannot fit grey images {x.shape[1:]} to the input shape {list(want)}")
    factor = max(1, -(-height // x.shape[1]), -(-width // x.shape[2]))
    big = x.repeat(factor, axis=1).repeat(factor, axis=2)
    top, left = (big.shape[1] - height) // 2, (big.shape[2] - width) // 2
    img = big[:, top : top + height, left : left + width]
    return {"nchw": img[:, None], "nhwc": img[..., None], "hw": img}[layout]


def fit_to_input(x: np.ndarray, spec: TensorSpec, what: str = "data", images: bool = False) -> np.ndarray:
    """Shape and cast `x` for `spec` (batch axis first); InvalidArgument naming expected vs got.

    Only a reshape between equal element counts is done, plus the grey-image fit when `images` is set
    (for built-in image sets such as `sklearn:digits`); a user's array of another shape is an error.
    """
    want = spec.shape[1:]
    expected = ["N", *("?" if d < 0 else d for d in want)]
    if x.ndim == len(spec.shape) and all(d < 0 or d == g for d, g in zip(want, x.shape[1:], strict=True)):
        pass
    elif x.ndim >= 2 and all(d >= 0 for d in want) and int(np.prod(x.shape[1:])) == int(np.prod(want)):
        x = x.reshape((x.shape[0], *want))
    elif images and x.ndim == 3 and all(d >= 0 for d in want):
        x = _fit_image(x, want)
    else:
        raise InvalidArgument(f"{what} has shape {list(x.shape)} but input {spec.name!r} expects {expected}")
    return np.ascontiguousarray(x.astype(numpy_dtype(spec.datatype), copy=False))


def load_data(data: str | np.ndarray | Dataset, signature: Signature, what: str = "data") -> Dataset:
    """A spec, a file or an array, shaped for the model's (single) input."""
    if isinstance(data, Dataset):
        return data
    if not signature.inputs:
        raise InvalidArgument("the version has no input signature; cannot shape data for it")
    if isinstance(data, np.ndarray):
        spec, (x, y) = "<array>", (data, None)
    else:
        spec, (x, y) = str(data), _read(str(data), what)
    x = fit_to_input(np.asarray(x), signature.inputs[0], what, images=spec.startswith(_DIGITS))
    if y is not None:
        y = np.asarray(y).reshape(-1)
        if len(y) != len(x):
            raise InvalidArgument(f"{what}: {len(x)} inputs but {len(y)} labels")
    return Dataset(spec, x, y)


def predict(session: Any, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """First output of an onnxruntime session over `x`, in batches."""
    name = session.get_inputs()[0].name
    outs = [session.run(None, {name: x[i : i + batch]})[0] for i in range(0, len(x), batch)]
    return np.concatenate(outs)


def accuracy(model_path: str | Path, data: Dataset) -> float:
    """Top-1 accuracy of an ONNX classifier on labelled data already shaped for its input."""
    if data.y is None:
        raise InvalidArgument(f"data {data.spec!r} has no labels; accuracy needs them")
    from maas.optimize.measure import session

    scores = predict(session(model_path), data.x)
    pred = scores.argmax(axis=1) if scores.ndim == 2 else scores.reshape(-1)
    return float((pred.astype(np.int64) == data.y.astype(np.int64)).mean())
