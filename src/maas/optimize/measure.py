"""Measurements shared by every transform: size on disk (raw and gzip), latency and throughput, parity; the
size and the timing loop are evaluate's (`evaluate/latency.py`), reported under optimize's keys.

Timings are bounded (a fixed number of runs or a time cap, whichever comes first) and only reported,
never asserted: on a shared 2-core machine they are indications, not guarantees.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from maas.types import Signature, numpy_dtype


def session(model_path: str | Path, threads: int = 0) -> Any:
    """An onnxruntime CPU session (threads 0 = onnxruntime's default, one per core)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])


def sizes(model_path: str | Path) -> dict[str, int]:
    """evaluate's size measurement, under the keys the optimize report has always used."""
    from maas.evaluate.latency import model_size

    size = model_size(model_path)
    return {"size_bytes": size["bytes"], "gzip_bytes": size["gzip_bytes"]}


def sample_inputs(signature: Signature, batch: int, seed: int = 0) -> np.ndarray:
    """Random inputs for the first input of `signature` (dynamic non-batch dimensions become 1)."""
    spec = signature.inputs[0]
    shape = (batch, *(d if d > 0 else 1 for d in spec.shape[1:]))
    rng = np.random.default_rng(seed)
    dtype = numpy_dtype(spec.datatype)
    if dtype.kind in "iu":
        return rng.integers(0, 10, size=shape).astype(dtype)
    return rng.random(shape, dtype=np.float32).astype(dtype)


def _batch(x: np.ndarray, n: int) -> np.ndarray:
    reps = -(-n // len(x))
    return np.ascontiguousarray(np.concatenate([x] * reps)[:n]) if reps > 1 else np.ascontiguousarray(x[:n])


def speed(
    model_path: str | Path, x: np.ndarray, *, runs_b1: int = 100, runs_b32: int = 20, time_cap_s: float = 2.0
) -> dict[str, float]:
    """Latency p50 at batch 1 (ms) and throughput at batch 32 (samples/s), each after a warm-up run."""
    from maas.evaluate.latency import time_calls

    sess = session(model_path)
    name = sess.get_inputs()[0].name
    one, many = _batch(x, 1), _batch(x, 32)
    b1 = time_calls(lambda: sess.run(None, {name: one}), budget_s=time_cap_s, max_iterations=runs_b1,
                    min_iterations=5)
    b32 = time_calls(lambda: sess.run(None, {name: many}), budget_s=time_cap_s, max_iterations=runs_b32)
    return {"latency_p50_ms_b1": round(float(np.median(b1)) * 1e3, 4),
            "throughput_b32": round(32 * len(b32) / sum(b32), 2)}


def parity(reference: str | Path, candidate: str | Path, x: np.ndarray) -> dict[str, Any]:
    """Largest absolute difference of every output, and whether the top-1 class agrees."""
    a, b = session(reference), session(candidate)
    name_a, name_b = a.get_inputs()[0].name, b.get_inputs()[0].name
    outs_a, outs_b = a.run(None, {name_a: x}), b.run(None, {name_b: x})
    diffs = [float(np.max(np.abs(np.asarray(p, np.float64) - np.asarray(q, np.float64))))
             for p, q in zip(outs_a, outs_b, strict=True)]
    first_a, first_b = np.asarray(outs_a[0]), np.asarray(outs_b[0])
    agree = float((first_a.argmax(-1) == first_b.argmax(-1)).mean()) if first_a.ndim == 2 else None
    return {"max_abs_diff": max(diffs), "top1_agreement": agree, "samples": int(len(x))}
