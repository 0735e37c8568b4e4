"""The classification extension: an output asked for with `classification=k` becomes its top-k classes.

Each class is a BYTES string `"<score>:<index>"` or `"<score>:<index>:<label>"`, k per batch row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from maas.errors import InvalidArgument
from maas.numbers import is_ascii_int
from maas.serving.steps import topk


def classification_k(parameters: dict[str, Any]) -> int | None:
    """The k a requested output asks for, or None; InvalidArgument when it is not a positive integer."""
    if "classification" not in parameters:
        return None
    value = parameters["classification"]
    if isinstance(value, bool) or not isinstance(value, int | str) or not is_ascii_int(str(value)) or int(value) < 1:
        raise InvalidArgument(f"classification must be a positive integer, got {str(value)[:40]!r}")
    return int(value)


def classify(data: np.ndarray, k: int, labels: Sequence[str], batched: bool) -> np.ndarray:
    """Top-k strings per batch row (or over the whole tensor when the model has no batch dimension)."""
    if not np.issubdtype(data.dtype, np.number) and data.dtype != np.bool_:
        raise InvalidArgument("classification needs a numeric output")
    rows = data.reshape(data.shape[0], -1) if batched and data.ndim > 0 else data.reshape(1, -1)
    indices, scores = topk(rows.astype(np.float64), k)
    out = np.empty(indices.shape, dtype=object)
    for r in range(indices.shape[0]):
        for c in range(indices.shape[1]):
            index = int(indices[r, c])
            text = f"{scores[r, c]:f}:{index}"
            if 0 <= index < len(labels):
                text += f":{labels[index]}"
            out[r, c] = text.encode()
    return out if batched and data.ndim > 0 else out.reshape(-1)
