"""Judging a candidate against stable over one interval, and the rollout's state machine."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest

from maas.errors import InvalidArgument
from maas.traffic.analysis import Agreement, ArmWindow, compare, judge, predicted_classes, psi
from maas.traffic.rollout import Rollout, RolloutState, Thresholds, Verdict, after_verdict, check_steps

T = Thresholds(min_requests=10)


def window(n: int, failures: int = 0, seconds: float = 0.002, classes: tuple[int, ...] = (0, 1, 2)) -> ArmWindow:
    w = ArmWindow()
    for i in range(n):
        w.add(i >= failures, seconds, np.array([classes[i % len(classes)]]), 0.5)
    return w


def agreement(n: int, agreed: int) -> Agreement:
    a = Agreement()
    for i in range(n):
        a.add(i < agreed, None, np.array([i % 3]))
    return a


def test_a_good_candidate_passes() -> None:
    m = judge(window(100), window(20), agreement(20, 20), T)
    assert m.verdict is Verdict.SUCCESSFUL
    assert m.figures["agreement"] == 1.0 and m.figures["stable"]["requests"] == 100


def test_too_few_requests_is_inconclusive() -> None:
    assert judge(window(100), window(3), agreement(20, 20), T).verdict is Verdict.INCONCLUSIVE
    m = judge(window(100), window(20), agreement(2, 2), T)
    assert m.verdict is Verdict.INCONCLUSIVE and "mirrored" in m.reason


def test_failures_latency_agreement_and_psi_each_fail_with_their_reason() -> None:
    m = judge(window(100), window(20, failures=5), agreement(20, 20), T)
    assert m.verdict is Verdict.FAILED and "failure rate" in m.reason
    m = judge(window(100), window(20, seconds=0.05), agreement(20, 20), T)
    assert m.verdict is Verdict.FAILED and "p99 latency" in m.reason and m.figures["p99_ratio"] == 25.0
    m = judge(window(100), window(20), agreement(20, 10), T)
    assert m.verdict is Verdict.FAILED and "agreement" in m.reason
    m = judge(window(100), window(200, classes=(2,)), Agreement(), Thresholds(min_requests=10, mirror_fraction=0))
    assert m.verdict is Verdict.FAILED and "PSI" in m.reason


def test_failures_are_conclusive_before_the_quota() -> None:
    m = judge(window(100), window(4, failures=3), agreement(2, 2), T)
    assert m.verdict is Verdict.FAILED and "failure rate" in m.reason
    assert judge(window(100), window(4, failures=0), agreement(2, 2), T).verdict is Verdict.INCONCLUSIVE


def test_sub_millisecond_latency_noise_does_not_fail() -> None:
    m = judge(window(100, seconds=0.0002), window(20, seconds=0.0009), agreement(20, 20), T)
    assert m.verdict is Verdict.SUCCESSFUL


def test_compare_classification_and_regression() -> None:
    scores = {"y": np.array([[0.1, 0.9], [0.8, 0.2]], dtype=np.float32)}
    assert compare(scores, scores, 0.01)[0]
    assert not compare(scores, {"y": scores["y"][:, ::-1]}, 0.01)[0]
    assert np.array_equal(predicted_classes({"label": np.array([2, 1])}), [2, 1])
    reg = {"y": np.array([[1.0], [2.0]], dtype=np.float32)}
    agree, error, _ = compare(reg, {"y": reg["y"] * 1.001}, 0.01)
    assert agree and error is not None and error < 0.01
    assert not compare(reg, {"y": reg["y"] * 1.5}, 0.01)[0]


def test_psi() -> None:
    same = Counter({0: 50, 1: 50})
    assert psi(same, same) == pytest.approx(0.0)
    assert psi(same, Counter({0: 95, 1: 5})) > 0.25
    assert psi(Counter(), same) is None


def rollout(step: int = 0, steps: tuple[int, ...] = (10, 50, 100)) -> Rollout:
    return Rollout(1, "m", 1, 2, steps, 1.0, T, RolloutState.RUNNING, step, "", 0, datetime.now(UTC),
                   datetime.now(UTC), "me")


def test_transitions_follow_the_verdicts() -> None:
    t = after_verdict(rollout(0), Verdict.SUCCESSFUL, "ok", 0)
    assert (t.state, t.step, t.candidate_weight) == (RolloutState.RUNNING, 1, 50)
    t = after_verdict(rollout(1), Verdict.SUCCESSFUL, "ok", 0)  # the next step is 100: promote
    assert t.state is RolloutState.SUCCEEDED and t.promote
    t = after_verdict(rollout(1, (10, 50)), Verdict.SUCCESSFUL, "ok", 0)
    assert t.state is RolloutState.SUCCEEDED and t.promote
    t = after_verdict(rollout(0), Verdict.FAILED, "agreement 10%", 0)
    assert (t.state, t.candidate_weight, t.reason) == (RolloutState.ROLLED_BACK, 0, "agreement 10%")
    assert after_verdict(rollout(0), Verdict.INCONCLUSIVE, "few", 3).state is RolloutState.RUNNING
    t = after_verdict(rollout(0), Verdict.INCONCLUSIVE, "few", T.max_inconclusive)
    assert t.state is RolloutState.PAUSED and t.candidate_weight is None


@pytest.mark.parametrize("steps", [[], [50, 10], [0, 50], [10, 101], ["10"], [10, 10]])
def test_bad_steps(steps: list[object]) -> None:
    with pytest.raises(InvalidArgument):
        check_steps(steps)


def test_bad_thresholds() -> None:
    with pytest.raises(InvalidArgument, match="unknown threshold"):
        Thresholds.from_dict({"max_errors": 1})
    with pytest.raises(InvalidArgument, match="between 0 and 1"):
        Thresholds.from_dict({"min_agreement": 2})
    assert Thresholds.from_dict({"min_requests": 5.0}).min_requests == 5
