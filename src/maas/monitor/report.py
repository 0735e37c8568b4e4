"""The drift report of one version: its logged window against its reference statistics, per feature, on the
predictions, the data-set verdict and the outlier summary (JSON here; HTML in `html_report.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from maas.errors import FailedPrecondition, InvalidArgument
from maas.monitor.drift import DRIFT_SHARE, ColumnDrift, column_drift
from maas.monitor.features import prediction_column
from maas.monitor.log_writer import LogWriter
from maas.monitor.outliers import outlier_summary
from maas.monitor.prediction_log import WindowCache, read_window

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str) -> timedelta:
    """`30m`, `1h`, `2d`, `90s` -> a positive timedelta; InvalidArgument otherwise."""
    text = (text or "").strip()
    unit = text[-1:].lower()
    try:
        amount = float(text[:-1])
    except ValueError:
        amount = -1.0
    if unit not in _UNITS or not 0 < amount <= 366 * 86400:
        raise InvalidArgument(f"invalid window {text[:40]!r}: use a number and s, m, h or d (e.g. 1h)")
    return timedelta(seconds=amount * _UNITS[unit])


@dataclass
class DriftReport:
    model: str
    version: int
    since: str
    until: str
    reference_source: str
    reference_rows: int
    current_rows: int
    features: list[ColumnDrift]
    prediction: ColumnDrift | None
    share_drifted: float
    dataset_drift: bool
    outliers: dict[str, Any]
    drift_share: float = DRIFT_SHARE
    samples: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict, repr=False)

    @property
    def drifted_features(self) -> list[str]:
        return [f.column for f in self.features if f.drifted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "version": self.version, "since": self.since, "until": self.until,
            "reference": {"source": self.reference_source, "rows": self.reference_rows},
            "current_rows": self.current_rows,
            "features": [f.to_dict() for f in self.features],
            "drifted_features": self.drifted_features,
            "share_drifted": self.share_drifted, "drift_share": self.drift_share,
            "dataset_drift": self.dataset_drift,
            "prediction": self.prediction.to_dict() if self.prediction else None,
            "prediction_drift": bool(self.prediction and self.prediction.drifted),
            "outliers": self.outliers,
        }


def drift_report(
    registry: Any, writer: LogWriter, name: str, version: str | int | None = None, since: str = "1h",
    *, method: str | None = None, now: datetime | None = None, cache: WindowCache | None = None,
) -> DriftReport:
    """Compare what `name` (or `name:version`) logged in the last `since` with its reference."""
    window = parse_since(since)
    ref = f"{name}:{version}" if version not in (None, "") else name
    v = registry.get(ref)
    found = registry.get_reference(v.ref)
    if found is None:
        raise FailedPrecondition(
            f"{v.ref} has no reference statistics; set them with `maas monitor reference {v.ref} --data D`"
        )
    doc, source = found
    until = now or datetime.now(UTC)
    start = until - window
    current = read_window(writer, v.model, v.version, start, cache)
    reference = {k: np.asarray(c, dtype=np.float64) for k, c in doc["columns"].items()}
    inputs = [c for c in reference if c.startswith("in.") and c in current]
    if not inputs:
        raise FailedPrecondition(f"the logged features of {v.ref} do not match its reference statistics")
    features = [column_drift(c, reference[c], current[c].astype(np.float64), method) for c in inputs]
    pred = prediction_column([c for c in reference if c in current])
    prediction = column_drift(pred, reference[pred], current[pred].astype(np.float64), method) if pred else None
    share = sum(f.drifted for f in features) / len(features)
    ref_matrix = np.column_stack([reference[c] for c in inputs])
    cur_matrix = np.column_stack([current[c].astype(np.float64) for c in inputs])
    finite_ref = ref_matrix[np.isfinite(ref_matrix).all(axis=1)]
    finite = np.isfinite(cur_matrix).all(axis=1)
    outliers = outlier_summary(finite_ref, cur_matrix[finite], current["request_id"][finite])
    shown = inputs + ([pred] if pred else [])
    return DriftReport(
        model=v.model, version=v.version, since=start.isoformat(timespec="seconds"),
        until=until.isoformat(timespec="seconds"), reference_source=source,
        reference_rows=len(next(iter(reference.values()))), current_rows=len(current["request_id"]),
        features=features, prediction=prediction, share_drifted=share, dataset_drift=share >= DRIFT_SHARE,
        outliers=outliers,
        samples={c: (reference[c].tolist(), current[c].astype(np.float64).tolist()) for c in shown},
    )
