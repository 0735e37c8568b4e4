"""Per-feature drift tests with Evidently's documented defaults, written over scipy.

Why not Evidently itself (0.7.23, Apache-2.0, numpy 2), measured on 2026-12-02: it does not import beside
maas's pandas 3.1 (it imports `infer_dtype_from_object`, a private helper pandas 3 removed); it adds 25
packages (litestar, nltk, statsmodels, plotly at 188 MB, faker, …, ~330 MB); importing it costs 6.8-7.3 s
of CPU against 1.3-1.8 s for the scipy modules used here (two runs each, load average 12); its usage telemetry
(iterative-telemetry, off with DO_NOT_TRACK) lives only in its UI service, not in `Report.run`. So the
serving extra stays on scipy, and `tests/unit/monitor/test_monitor_drift_matches_evidently.py` (Evidently
in the dev extra) checks that the test chosen, its statistic and its verdict equal Evidently's on the same
columns (numeric, categorical, binary; small and large reference) and that the data-set verdict agrees.

The defaults (Evidently's "data drift" preset):

- reference of at most 1000 rows: numeric with more than 5 distinct values -> Kolmogorov-Smirnov;
  two values -> Z-test of proportions; otherwise (categorical) -> chi-square; drift when p < 0.05;
- larger reference: numeric -> Wasserstein distance normed by the reference's standard deviation,
  categorical -> Jensen-Shannon distance; drift when the value is >= 0.1;
- `psi` (population stability index, 10 reference-quantile bins) on request; drift when >= 0.1;
- the data set drifts when at least half of the features do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial import distance

from maas.errors import InvalidArgument

SMALL_REFERENCE = 1000
DRIFT_SHARE = 0.5
METHODS = ("ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi")


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str  # numeric, categorical, binary
    method: str
    statistic: float  # p-value for the statistical tests, else the distance
    threshold: float
    drifted: bool
    reference_rows: int
    current_rows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def kind_of(reference: np.ndarray) -> str:
    distinct = len(np.unique(reference))
    if distinct <= 2:
        return "binary"
    return "numeric" if distinct > 5 else "categorical"


def default_method(kind: str, reference_rows: int) -> str:
    if reference_rows <= SMALL_REFERENCE:
        return {"numeric": "ks", "binary": "z", "categorical": "chisquare"}[kind]
    return "wasserstein" if kind == "numeric" else "jensenshannon"


def column_drift(column: str, reference: np.ndarray, current: np.ndarray, method: str | None = None) -> ColumnDrift:
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if len(ref) == 0 or len(cur) == 0:
        raise InvalidArgument(f"feature {column!r} has no finite values to compare")
    kind = kind_of(ref)
    method = method or default_method(kind, len(ref))
    if method not in METHODS:
        raise InvalidArgument(f"unknown drift method {method!r}; use one of {', '.join(METHODS)}")
    value, threshold, is_p = _TESTS[method](ref, cur)
    drifted = value < threshold if is_p else value >= threshold
    return ColumnDrift(column, kind, method, float(value), threshold, bool(drifted), len(ref), len(cur))


def _ks(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float, bool]:
    return float(stats.ks_2samp(ref, cur).pvalue), 0.05, True


def _counts(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys = np.union1d(ref, cur)
    return (
        np.array([np.count_nonzero(ref == k) for k in keys], dtype=np.float64),
        np.array([np.count_nonzero(cur == k) for k in keys], dtype=np.float64),
    )


def _chisquare(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float, bool]:
    ref_counts, cur_counts = _counts(ref, cur)
    # A value unseen in the reference gets a tiny expected count, so it weighs heavily instead of dividing by 0.
    expected = np.maximum(ref_counts / ref_counts.sum(), 1e-6)
    expected = expected / expected.sum() * cur_counts.sum()
    return float(stats.chisquare(cur_counts, expected).pvalue), 0.05, True


def _z(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float, bool]:
    positive = np.max(np.union1d(ref, cur))
    x1, x2 = np.count_nonzero(ref == positive), np.count_nonzero(cur == positive)
    n1, n2 = len(ref), len(cur)
    p = (x1 + x2) / (n1 + n2)
    spread = np.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    if spread == 0:
        return 1.0, 0.05, True
    z = (x1 / n1 - x2 / n2) / spread
    return float(2 * stats.norm.sf(abs(z))), 0.05, True


def _wasserstein(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float, bool]:
    scale = float(np.std(ref)) or 1e-12
    return float(stats.wasserstein_distance(ref, cur) / scale), 0.1, False


def _jensenshannon(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float, bool]:
    if kind_of(ref) == "numeric":  # binned on the reference's range, as Evidently does for numbers
        edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins=30)
        ref_counts, cur_counts = np.histogram(ref, edges)[0], np.histogram(cur, edges)[0]
    else:
        ref_counts, cur_counts = _counts(ref, cur)
    return float(distance.jensenshannon(ref_counts, cur_counts)), 0.1, False


def _psi(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float, bool]:
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, 11)))
    if len(edges) < 3:
        ref_counts, cur_counts = _counts(ref, cur)
    else:
        edges[0], edges[-1] = -np.inf, np.inf
        ref_counts, cur_counts = np.histogram(ref, edges)[0], np.histogram(cur, edges)[0]
    r = np.maximum(ref_counts / ref_counts.sum(), 1e-4)
    c = np.maximum(cur_counts / cur_counts.sum(), 1e-4)
    return float(np.sum((c - r) * np.log(c / r))), 0.1, False


_TESTS = {
    "ks": _ks, "chisquare": _chisquare, "z": _z, "wasserstein": _wasserstein, "jensenshannon": _jensenshannon,
    "psi": _psi,
}
