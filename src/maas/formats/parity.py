"""Does the ONNX model compute what the original did? Sample inputs (given, or drawn from the signature),
both models run on them, and a report stored on the version; a mismatch refuses the import."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from maas.errors import InvalidArgument
from maas.types import Signature, numpy_dtype

SAMPLE_ROWS = 4
DYNAMIC_DIM = 8  # stand-in for a dynamic non-batch dimension (e.g. a sequence length)
ATOL = 1e-4
RTOL = 1e-3

Reference = Callable[[dict[str, np.ndarray]], Sequence[Any]]


@dataclass(frozen=True)
class OutputRule:
    """How one output position is compared: exactly (class labels), with tolerance, or not at all."""

    exact: bool = False
    skip: bool = False


def as_inputs(sample: Any, sig: Signature) -> dict[str, np.ndarray]:
    """Accept an array, a list in input order, or a dict by input name (torch tensors too)."""
    names = [t.name for t in sig.inputs]
    if isinstance(sample, dict):
        missing = set(names) - set(sample)
        if missing:
            raise InvalidArgument(f"sample_input lacks inputs {sorted(missing)}")
        items = [sample[n] for n in names]
    elif isinstance(sample, list | tuple):
        items = list(sample)
    else:
        items = [sample]
    if len(items) != len(names):
        raise InvalidArgument(f"sample_input has {len(items)} arrays; the model takes {len(names)} inputs")
    out = {}
    for spec, item in zip(sig.inputs, items, strict=True):
        arr = _to_numpy(item)
        if spec.datatype != "BYTES":
            arr = arr.astype(numpy_dtype(spec.datatype), copy=False)
        if len(arr.shape) != len(spec.shape) or any(
            d != -1 and d != a for d, a in zip(spec.shape, arr.shape, strict=True)
        ):
            raise InvalidArgument(
                f"sample_input {spec.name!r} has shape {list(arr.shape)}; expected {list(spec.shape)}"
            )
        out[spec.name] = arr
    return out


def _to_numpy(item: Any) -> np.ndarray:
    if hasattr(item, "detach"):  # torch.Tensor, without importing torch
        item = item.detach().cpu().numpy()
    return np.asarray(item)


def generate(sig: Signature, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs matching the signature: normal floats, small ints, a few batch rows."""
    rng = np.random.default_rng(seed)
    out = {}
    for spec in sig.inputs:
        shape = tuple(
            (SAMPLE_ROWS if (i == 0 and sig.batch_axis) else DYNAMIC_DIM) if d == -1 else d
            for i, d in enumerate(spec.shape)
        )
        if spec.datatype == "BYTES":
            raise InvalidArgument(f"cannot invent values for string input {spec.name!r}; pass sample_input")
        dtype = numpy_dtype(spec.datatype)
        if dtype.kind == "f":
            arr = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            arr = rng.integers(0, 2, shape).astype(bool)
        else:
            arr = rng.integers(0, 5, shape).astype(dtype)
        out[spec.name] = arr
    return out


def compare(
    reference: Sequence[Any],
    actual: Sequence[np.ndarray],
    names: Sequence[str],
    rules: Sequence[OutputRule] | None = None,
    *,
    atol: float = ATOL,
    rtol: float = RTOL,
    samples: int = 0,
) -> dict[str, Any]:
    """Element-wise comparison in the `numpy.allclose` sense; returns the report stored on the version."""
    if len(reference) != len(actual):
        raise InvalidArgument(
            f"the original model gives {len(reference)} outputs, the ONNX model {len(actual)}"
        )
    rules = list(rules or [OutputRule()] * len(actual))
    per_output = []
    worst_abs = worst_rel = 0.0
    passed = True
    for name, ref, got, rule in zip(names, reference, actual, rules, strict=True):
        entry: dict[str, Any] = {"name": name}
        if rule.skip:
            entry.update(compared=False, passed=True)
            per_output.append(entry)
            continue
        ref_arr, got_arr = _to_numpy(ref), np.asarray(got)
        if ref_arr.size != got_arr.size:
            entry.update(passed=False, error=f"shape {list(ref_arr.shape)} vs ONNX {list(got_arr.shape)}")
            passed = False
            per_output.append(entry)
            continue
        ref_arr = ref_arr.reshape(got_arr.shape)
        if rule.exact or ref_arr.dtype.kind not in "fc" or got_arr.dtype.kind not in "fc":
            mismatches = int(np.sum(ref_arr.astype(str) != got_arr.astype(str)))
            entry.update(exact=True, mismatches=mismatches, passed=mismatches == 0)
        else:
            r, g = ref_arr.astype(np.float64), got_arr.astype(np.float64)
            diff = np.abs(r - g)
            finite_ok = bool(np.array_equal(np.isfinite(r), np.isfinite(g)))
            diff = np.where(np.isfinite(diff), diff, 0.0)
            abs_err = float(diff.max()) if diff.size else 0.0
            rel_err = float((diff / np.maximum(np.abs(r), atol)).max()) if diff.size else 0.0
            ok = finite_ok and bool(np.all(diff <= atol + rtol * np.abs(r)))
            entry.update(max_abs_err=abs_err, max_rel_err=rel_err, passed=ok)
            worst_abs, worst_rel = max(worst_abs, abs_err), max(worst_rel, rel_err)
        passed = passed and entry["passed"]
        per_output.append(entry)
    return {
        "max_abs_err": worst_abs,
        "max_rel_err": worst_rel,
        "outputs": per_output,
        "samples": samples,
        "passed": passed,
        "atol": atol,
        "rtol": rtol,
    }


def describe_failure(report: dict[str, Any]) -> str:
    """One readable paragraph for the InvalidArgument raised on a mismatch."""
    bad = []
    for o in report["outputs"]:
        if o.get("passed"):
            continue
        if "error" in o:
            bad.append(f"{o['name']}: {o['error']}")
        elif o.get("exact"):
            bad.append(f"{o['name']}: {o['mismatches']} of the values differ")
        else:
            bad.append(f"{o['name']}: max abs err {o['max_abs_err']:.3g}, max rel err {o['max_rel_err']:.3g}")
    return (
        f"the ONNX model does not match the original on {report['samples']} samples "
        f"(atol={report['atol']}, rtol={report['rtol']}): "
        + "; ".join(bad)
        + "; pass allow_mismatch (--allow-mismatch) to import it anyway"
    )
