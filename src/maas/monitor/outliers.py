"""Outlier scores: the Mahalanobis distance of each row's standardised input features to the reference,
with the reference's own 99th percentile as the line past which a row counts as an outlier."""

from __future__ import annotations

from typing import Any

import numpy as np


class MahalanobisScorer:
    def __init__(self, reference: np.ndarray) -> None:
        """`reference`: rows x features (finite)."""
        self.mean = reference.mean(axis=0)
        self.scale = reference.std(axis=0)
        self.scale[self.scale == 0] = 1.0
        z = (reference - self.mean) / self.scale
        self.precision = np.linalg.pinv(np.atleast_2d(np.cov(z, rowvar=False)))
        self.threshold = float(np.quantile(self.score(reference), 0.99)) if len(reference) else np.inf

    def score(self, rows: np.ndarray) -> np.ndarray:
        z = (rows - self.mean) / self.scale
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", z, self.precision, z), 0.0))


def outlier_summary(reference: np.ndarray, current: np.ndarray, request_ids: np.ndarray) -> dict[str, Any]:
    """Per-request scores (the worst row of each request) summarised for the drift report."""
    scorer = MahalanobisScorer(reference)
    scores = scorer.score(current)
    per_request: dict[str, float] = {}
    for rid, s in zip(request_ids.tolist(), scores.tolist(), strict=True):
        per_request[str(rid)] = max(per_request.get(str(rid), 0.0), s)
    values = np.array(list(per_request.values()))
    worst = sorted(per_request.items(), key=lambda kv: -kv[1])[:10]
    return {
        "method": "mahalanobis",
        "threshold": scorer.threshold,
        "requests": len(values),
        "outliers": int(np.count_nonzero(values > scorer.threshold)),
        "outlier_share": float(np.mean(values > scorer.threshold)) if len(values) else 0.0,
        "mean_score": float(values.mean()) if len(values) else 0.0,
        "max_score": float(values.max()) if len(values) else 0.0,
        "worst": [{"request_id": rid, "score": s} for rid, s in worst],
    }
