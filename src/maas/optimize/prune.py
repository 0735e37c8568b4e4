"""Unstructured magnitude pruning of ONNX weights: the smallest |w| of each Conv/Gemm/MatMul weight set to 0.

Zeros do not make a dense ONNX file smaller nor onnxruntime faster (its CPU kernels are dense); they make the
file compress better and prepare for sparse formats. The report says so with measured numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from maas.errors import FailedPrecondition, InvalidArgument

# op type -> positions of its inputs that hold weights
_WEIGHT_INPUTS = {"Conv": (1,), "ConvTranspose": (1,), "Gemm": (0, 1), "MatMul": (0, 1)}


def check_sparsity(sparsity: float) -> float:
    if not isinstance(sparsity, int | float) or not 0.0 < float(sparsity) < 1.0:
        raise InvalidArgument(f"prune sparsity must be a fraction between 0 and 1 (exclusive), got {sparsity!r}")
    return float(sparsity)


def prune(src: str | Path, dst: str | Path, sparsity: float) -> dict[str, Any]:
    """Zero the `sparsity` fraction of smallest-magnitude weights in each weight tensor; write to `dst`.

    Structured (channel) pruning needs the PyTorch graph, not the ONNX one: see `maas.optimize.structured`.
    """
    import onnx
    from onnx import numpy_helper

    sparsity = check_sparsity(sparsity)
    model = onnx.load(str(src))
    inits = {init.name: init for init in model.graph.initializer}
    targets: set[str] = set()
    for node in model.graph.node:
        for pos in _WEIGHT_INPUTS.get(node.op_type, ()):
            if pos < len(node.input) and node.input[pos] in inits:
                targets.add(node.input[pos])
    pruned_total = zero_total = 0
    tensors: dict[str, float] = {}
    for name in sorted(targets):
        init = inits[name]
        w = numpy_helper.to_array(init)
        if w.dtype.kind != "f" or w.size < 2:
            continue
        k = int(np.floor(sparsity * w.size))
        flat = w.reshape(-1).copy()
        if k > 0:
            flat[np.argpartition(np.abs(flat), k - 1)[:k]] = 0
        init.CopyFrom(numpy_helper.from_array(flat.reshape(w.shape).astype(w.dtype), name))
        zeros = int(np.count_nonzero(flat == 0))
        tensors[name] = round(zeros / w.size, 4)
        pruned_total += w.size
        zero_total += zeros
    if not tensors:
        raise FailedPrecondition("nothing to prune: the model has no float Conv/Gemm/MatMul weight initializers")
    onnx.save(model, str(dst))
    return {
        "method": "unstructured magnitude, per tensor",
        "target_sparsity": sparsity,
        "achieved_sparsity": round(zero_total / pruned_total, 4),
        "pruned_parameters": int(pruned_total),
        "tensors": tensors,
        "note": "onnxruntime runs zeros densely: expect no speed-up; the gain is in the gzip-compressed size",
    }
