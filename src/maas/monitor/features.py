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
        if a.ndim == 1:
            out[name] = a.astype(np.float64)
        elif a.ndim == 2 and a.shape[1] <= MAX_COLUMNS:
            x = a.astype(np.float64)
            for i in range(a.shape[1]):
                out[f"{name}[{i}]"] = x[:, i]
        else:
            out.update(image_summary(name, a))
    return out


def image_summary(name: str, x: np.ndarray) -> dict[str, np.ndarray]:
    """Per image: mean and std of each channel (channels last when the last axis has 1-4, else axis 1).

    Views, no copies, float64 accumulators: this runs over every logged image in the writer thread, whose
    time under the GIL is time the event loop waits for."""
    n = x.shape[0]
    if x.ndim == 2 or x.shape[-1] <= 4:  # channels last (a 2-D input is one channel)
        channels = 1 if x.ndim == 2 else x.shape[-1]
        planes = [x.reshape(n, -1, channels)[:, :, c] for c in range(channels)]
    else:
        channels = x.shape[1]
        planes = [x.reshape(n, channels, -1)[:, c, :] for c in range(channels)]
    out = {}
    for c, plane in enumerate(planes):
        mean = plane.mean(axis=1, dtype=np.float64)
        out[f"{name}.c{c}.mean"] = mean
        out[f"{name}.c{c}.std"] = np.sqrt(np.maximum((plane * plane).mean(axis=1, dtype=np.float64) - mean**2, 0))
    flat = x.reshape(n, -1)
    out[f"{name}.min"] = flat.min(axis=1).astype(np.float64)
    out[f"{name}.max"] = flat.max(axis=1).astype(np.float64)
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
