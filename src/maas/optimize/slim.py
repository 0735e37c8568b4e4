"""Graph slimming with onnxslim: constant folding, dead-node removal and fusions, same numbers out.

A slimmed model must compute what its parent computes; `slim` checks it on sample inputs and refuses otherwise.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from maas.errors import FailedPrecondition

TOLERANCE = 1e-4


def slim(src: str | Path, dst: str | Path, sample: np.ndarray) -> dict[str, Any]:
    """Write a slimmed copy of `src` to `dst`; parity against `src` on `sample` is part of the report."""
    import onnx
    import onnxslim

    from maas.optimize.measure import parity

    model = onnx.load(str(src))
    before = len(model.graph.node)
    slimmed = onnxslim.slim(model)
    with tempfile.TemporaryDirectory(prefix="maas-slim-") as tmp:
        path = Path(tmp) / "slim.onnx"
        onnx.save(slimmed, str(path))
        onnx.checker.check_model(str(path))
        check = parity(src, path, sample)
        if check["max_abs_diff"] > TOLERANCE:
            raise FailedPrecondition(
                f"the slimmed graph differs from its parent by {check['max_abs_diff']:.3g} "
                f"(tolerance {TOLERANCE:g}); no version was created"
            )
        Path(dst).write_bytes(path.read_bytes())
    return {"tool": f"onnxslim {onnxslim.__version__}", "nodes_before": before,
            "nodes_after": len(slimmed.graph.node), "parity": check}
