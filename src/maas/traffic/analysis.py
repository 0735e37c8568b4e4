"""Judging a candidate arm against the stable arm over one interval: failure rate, p99 latency, agreement on
mirrored inputs and the shift of the predicted-class distribution (PSI). Pure: numbers in, a verdict out."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from maas.traffic.rollout import Thresholds, Verdict

MAX_LATENCIES = 20_000  # per arm per interval; past it the window keeps a uniform sample (reservoir)


@dataclass
class ArmWindow:
    """What one arm did during the current interval."""

    requests: int = 0
    failures: int = 0
    latencies: list[float] = field(default_factory=list)
    classes: Counter[int] = field(default_factory=Counter)

    def add(self, ok: bool, seconds: float, classes: np.ndarray | None, rng_value: float) -> None:
        self.requests += 1
        if not ok:
            self.failures += 1
            return
        if len(self.latencies) < MAX_LATENCIES:
            self.latencies.append(seconds)
        else:
            slot = int(rng_value * self.requests)
            if slot < MAX_LATENCIES:
                self.latencies[slot] = seconds
        if classes is not None:
            self.classes.update(int(c) for c in classes.ravel()[:1024])

    @property
    def failure_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def p99_ms(self) -> float | None:
        if not self.latencies:
            return None
        return float(np.percentile(np.asarray(self.latencies), 99)) * 1000

    def figures(self) -> dict[str, Any]:
        p99 = self.p99_ms()
        return {"requests": self.requests, "failures": self.failures, "failure_rate": round(self.failure_rate, 4),
                "p99_ms": None if p99 is None else round(p99, 3)}


@dataclass
class Agreement:
    """Comparisons of primary and shadow (or stable and mirrored candidate) answers to the same inputs."""

    pairs: int = 0
    agreed: int = 0
    failures: int = 0  # the shadow side failed: counted apart, never a disagreement
    relative_error_sum: float = 0.0
    candidate_classes: Counter[int] = field(default_factory=Counter)

    def add(self, agree: bool, relative_error: float | None, classes: np.ndarray | None) -> None:
        self.pairs += 1
        self.agreed += int(agree)
        if relative_error is not None:
            self.relative_error_sum += relative_error
        if classes is not None:
            self.candidate_classes.update(int(c) for c in classes.ravel()[:1024])

    @property
    def rate(self) -> float | None:
        return self.agreed / self.pairs if self.pairs else None


def predicted_classes(outputs: dict[str, np.ndarray]) -> np.ndarray | None:
    """Top-1 class per row of a classifier's first output (scores [N, C>1] or integer labels [N]); None for
    anything else (a regression or an output with no classes)."""
    if not outputs:
        return None
    first = next(iter(outputs.values()))
    if first.dtype.kind in "iu" and first.ndim == 1:
        return first
    if first.dtype.kind == "f" and first.ndim == 2 and first.shape[1] > 1:
        return np.argmax(first, axis=1)
    return None


def compare(primary: dict[str, np.ndarray], other: dict[str, np.ndarray],
            tolerance: float) -> tuple[bool, float | None, np.ndarray | None]:
    """(agree, relative error for a regression, the other side's classes): classification compares the
    top-1 class of every row, regression the relative error of the first output."""
    first_a, first_b = next(iter(primary.values()), None), next(iter(other.values()), None)
    if first_a is not None and first_b is not None and (first_a.dtype.kind == "O" or first_b.dtype.kind == "O"):
        return bool(first_a.shape == first_b.shape and np.array_equal(first_a, first_b)), None, None
    mine, theirs = predicted_classes(primary), predicted_classes(other)
    if mine is not None and theirs is not None:
        return bool(mine.shape == theirs.shape and np.array_equal(mine, theirs)), None, theirs
    a = next(iter(primary.values()), None)
    b = next(iter(other.values()), None)
    if a is None or b is None or a.shape != b.shape or a.dtype.kind not in "fiu" or b.dtype.kind not in "fiu":
        return False, None, theirs
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    scale = float(np.max(np.abs(a64))) if a64.size else 0.0
    error = float(np.max(np.abs(a64 - b64))) / max(scale, 1e-12) if a64.size else 0.0
    return error <= tolerance, error, theirs


def psi(expected: Counter[int], actual: Counter[int], epsilon: float = 1e-4) -> float | None:
    """Population stability index of two class histograms (0: same; > 0.25: a major shift)."""
    n_e, n_a = sum(expected.values()), sum(actual.values())
    if not n_e or not n_a:
        return None
    total = 0.0
    for c in set(expected) | set(actual):
        e = max(expected.get(c, 0) / n_e, epsilon)
        a = max(actual.get(c, 0) / n_a, epsilon)
        total += (a - e) * math.log(a / e)
    return total


@dataclass(frozen=True)
class Measurement:
    verdict: Verdict
    reason: str
    figures: dict[str, Any]


def judge(stable: ArmWindow, candidate: ArmWindow, mirrored: Agreement, t: Thresholds) -> Measurement:
    """The verdict of one interval; the reason names the first criterion that failed (or what is missing):
    failures, then agreement on mirrored inputs, then the class distribution, then p99 latency."""
    cand_classes = candidate.classes + mirrored.candidate_classes
    shift = psi(stable.classes, cand_classes)
    agreement = mirrored.rate
    figures: dict[str, Any] = {
        "stable": stable.figures(), "candidate": candidate.figures(),
        "mirrored": mirrored.pairs, "mirror_failures": mirrored.failures,
        "agreement": None if agreement is None else round(agreement, 4),
        "psi": None if shift is None else round(shift, 4),
    }
    need = t.min_requests
    # Failures are conclusive early: counting the requests still missing as successes, the candidate already
    # fails more than allowed (a broken version is not kept waiting for its quota).
    optimistic = candidate.failures / max(candidate.requests, need)
    if stable.requests >= need and optimistic - stable.failure_rate > t.max_error_rate:
        return Measurement(Verdict.FAILED, f"failure rate {candidate.failure_rate:.1%} on the candidate against "
                           f"{stable.failure_rate:.1%} on stable (at most +{t.max_error_rate:.1%})", figures)
    if stable.requests < need or candidate.requests < need:
        return Measurement(Verdict.INCONCLUSIVE, f"too few requests to judge (stable {stable.requests}, "
                           f"candidate {candidate.requests}; need {need} each)", figures)
    excess = candidate.failure_rate - stable.failure_rate
    if excess > t.max_error_rate:
        return Measurement(Verdict.FAILED, f"failure rate {candidate.failure_rate:.1%} on the candidate against "
                           f"{stable.failure_rate:.1%} on stable (at most +{t.max_error_rate:.1%})", figures)
    if t.mirror_fraction > 0:
        if mirrored.pairs < need:
            return Measurement(Verdict.INCONCLUSIVE, f"too few mirrored requests to judge agreement "
                               f"({mirrored.pairs}; need {need})", figures)
        assert agreement is not None
        if agreement < t.min_agreement:
            return Measurement(Verdict.FAILED, f"agreement {agreement:.1%} with stable on mirrored inputs "
                               f"(at least {t.min_agreement:.1%})", figures)
    # A PSI on a handful of answers is mostly noise (about (classes - 1) * (1/n1 + 1/n2)): judged only with
    # at least ten answers per class on each side.
    enough = max(need, 10 * len(set(stable.classes) | set(cand_classes)))
    sampled = min(sum(stable.classes.values()), sum(cand_classes.values())) >= enough
    if shift is not None and sampled and shift > t.max_psi:
        return Measurement(Verdict.FAILED, f"predicted-class distribution shifted: PSI {shift:.3f} "
                           f"(at most {t.max_psi})", figures)
    # Latency last: behaviour on identical inputs is the sharper signal; a p99 is noisy on few requests.
    cand_p99, stable_p99 = candidate.p99_ms(), stable.p99_ms()
    if cand_p99 is not None and stable_p99 is not None:
        ratio = cand_p99 / max(stable_p99, 1e-6)
        figures["p99_ratio"] = round(ratio, 3)
        if ratio > t.max_p99_ratio and cand_p99 - stable_p99 > t.min_p99_delta_ms:
            return Measurement(Verdict.FAILED, f"p99 latency {cand_p99:.1f} ms on the candidate against "
                               f"{stable_p99:.1f} ms on stable (ratio {ratio:.2f}, at most {t.max_p99_ratio})",
                               figures)
    return Measurement(Verdict.SUCCESSFUL, "candidate within every threshold", figures)
