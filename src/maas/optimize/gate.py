"""Parent vs child, measured on the same data in the same run, and the accuracy gate that can refuse a child.

Every figure in the comparison is measured, none is assumed: size (raw and gzip), latency at batch 1,
throughput at batch 32, and accuracy when labelled data is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from maas.errors import FailedPrecondition, InvalidArgument
from maas.optimize.data import Dataset, accuracy
from maas.optimize.measure import sizes, speed


def check_max_drop(max_accuracy_drop: float | None, data: Dataset | None) -> None:
    if max_accuracy_drop is None:
        return
    if not 0 <= max_accuracy_drop <= 1:
        raise InvalidArgument(f"max accuracy drop is an absolute fraction in [0, 1], got {max_accuracy_drop}")
    if data is None or data.y is None:
        raise InvalidArgument("--max-accuracy-drop needs labelled --data to measure accuracy on")


def measure(model_path: str | Path, data: Dataset | None, sample: np.ndarray, timing: bool = True) -> dict[str, Any]:
    """Size, speed and (with labels) accuracy of one model."""
    out: dict[str, Any] = sizes(model_path)
    if data is not None and data.y is not None:
        out["accuracy"] = round(accuracy(model_path, data), 6)
    if timing:
        out.update(speed(model_path, sample))
    return out


def compare(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Ratios child/parent (below 1 is smaller; speed-up above 1 is faster) and the accuracy drop."""
    out: dict[str, Any] = {
        "size_ratio": round(child["size_bytes"] / parent["size_bytes"], 4),
        "gzip_ratio": round(child["gzip_bytes"] / parent["gzip_bytes"], 4),
    }
    if "latency_p50_ms_b1" in parent and "latency_p50_ms_b1" in child:
        out["speedup_b1"] = round(parent["latency_p50_ms_b1"] / child["latency_p50_ms_b1"], 3)
        out["speedup_b32"] = round(child["throughput_b32"] / parent["throughput_b32"], 3)
    if "accuracy" in parent and "accuracy" in child:
        out["accuracy_drop"] = round(parent["accuracy"] - child["accuracy"], 6)
    return out


def enforce(comparison: dict[str, Any], parent: dict[str, Any], child: dict[str, Any],
            max_accuracy_drop: float | None) -> None:
    """FailedPrecondition when the child loses more accuracy than allowed, saying by how much it missed."""
    if max_accuracy_drop is None:
        return
    drop = comparison["accuracy_drop"]
    if drop > max_accuracy_drop + 1e-12:
        raise FailedPrecondition(
            f"accuracy dropped by {drop:.4f} ({parent['accuracy']:.4f} -> {child['accuracy']:.4f}), more than "
            f"the allowed {max_accuracy_drop:.4f}: missed by {drop - max_accuracy_drop:.4f}; no version was created"
        )
