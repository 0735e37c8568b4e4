"""Reference statistics of a version: a seeded sample (at most `MAX_ROWS` rows) of its monitored features on
the data it was trained or evaluated on, and of its predictions there. Stored with the version through
`Registry.set_reference`; drift compares logged traffic against them."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from maas.errors import InvalidArgument
from maas.monitor.features import input_features, output_features

log = logging.getLogger(__name__)

MAX_ROWS = 5000


def build_reference(
    inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray], *, seed: int = 0
) -> dict[str, Any]:
    """Feature columns (`in.*`, `out.*`) of the rows, sampled down to MAX_ROWS."""
    columns = {f"in.{k}": v for k, v in input_features(inputs).items()}
    columns.update({f"out.{k}": v for k, v in output_features(outputs).items()})
    rows = len(next(iter(columns.values()))) if columns else 0
    if rows == 0:
        raise InvalidArgument("the reference data has no rows")
    keep = np.arange(rows)
    if rows > MAX_ROWS:
        keep = np.sort(np.random.default_rng(seed).choice(rows, MAX_ROWS, replace=False))
    return {
        "rows": rows,
        "sampled": len(keep),
        "columns": {k: [float(x) for x in np.asarray(v, dtype=np.float64)[keep]] for k, v in columns.items()},
    }


def reference_from_data(registry: Any, ref: str, x: np.ndarray, *, source: str = "") -> dict[str, Any]:
    """Run version `ref` on the rows `x` (as `maas eval` would), then store and return its reference.

    Rows that do not fit the version's input signature raise InvalidArgument before anything is stored."""
    from maas.evaluate.runner import Runner

    version = registry.get(ref)
    with Runner(registry, version) as runner:
        prepared = runner.prepare(x)
        outputs = runner.predict_prepared(prepared)
        doc = build_reference({runner.input.name: prepared}, outputs)
    registry.set_reference(version.ref, doc, source)
    return doc


def capture(registry: Any, version: Any, input_name: str, prepared: np.ndarray,
            outputs: dict[str, np.ndarray], source: str) -> None:
    """What `maas eval` calls: keep its data as the reference of a version that has none yet (the training
    data, kept by `maas train`, describes what the model learned better than any later test set)."""
    try:
        if registry.get_reference(version.ref) is None:
            registry.set_reference(version.ref, build_reference({input_name: prepared}, outputs), source)
    except Exception:
        log.exception("could not store reference statistics for %s", version.ref)


def capture_data(registry: Any, ref: str, x: np.ndarray, source: str) -> None:
    """What `maas train` calls with its training rows; never fails the training for it."""
    try:
        reference_from_data(registry, ref, x[: MAX_ROWS * 2], source=source)
    except Exception:
        log.exception("could not store reference statistics for %s", ref)
