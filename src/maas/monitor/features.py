"""Tensors -> one column per monitored feature (one value per batch row), the same for logged requests and
for reference data, so drift compares like with like.

Tabular inputs give one feature per column; images (rank >= 3) give per-image summaries (per-channel mean and
standard deviation, overall min and max) instead of pixels. Each output gives one prediction feature: the
class (argmax) for a score matrix, else its value.
"""

from __future__ import annotations

import numpy as np

MAX_COLUMNS = 64  # a wider matrix is summarised like an image


def input_features(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, a in arrays.items():
        if a.ndim == 0:
            continue
        if a.dtype == object or a.dtype.kind in "SU":  # e.g. encoded images: their size
            first = a.reshape(len(a), -1)[:, 0] if a.size else a.reshape(len(a))
            out[f"{name}.bytes"] = np.array([len(v) for v in first], dtype=np.float64)
            continue
        x = a.astype(np.float64, copy=False)
        if a.ndim == 1:
            out[name] = x
        elif a.ndim == 2 and a.shape[1] <= MAX_COLUMNS:
            for i in range(a.shape[1]):
                out[f"{name}[{i}]"] = x[:, i]
        else:
            out.update(image_summary(name, x))
    return out


def image_summary(name: str, x: np.ndarray) -> dict[str, np.ndarray]:
    """Per image: mean and std of each channel (channels last when the last axis has 1-4, else axis 1)."""
    if x.ndim == 2:
        x = x[:, :, None]
    channel_axis = x.ndim - 1 if x.shape[-1] <= 4 else 1
    moved = np.moveaxis(x, channel_axis, 1).reshape(x.shape[0], x.shape[channel_axis], -1)
    out = {}
    for c in range(moved.shape[1]):
        out[f"{name}.c{c}.mean"] = moved[:, c].mean(axis=1)
        out[f"{name}.c{c}.std"] = moved[:, c].std(axis=1)
    flat = x.reshape(x.shape[0], -1)
    out[f"{name}.min"] = flat.min(axis=1)
    out[f"{name}.max"] = flat.max(axis=1)
    return out


def output_features(outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, a in outputs.items():
        if a.dtype == object or a.dtype.kind in "SU" or a.ndim == 0:
            continue
        if a.ndim == 2 and a.shape[1] > 1:
            out[f"{name}.argmax"] = a.argmax(axis=1).astype(np.float64)
        else:
            out[name] = a.reshape(len(a), -1)[:, 0].astype(np.float64)
    return out


def prediction_column(columns: list[str]) -> str | None:
    """The one output feature the prediction-drift test uses: the first output's."""
    return next((c for c in columns if c.startswith("out.")), None)
