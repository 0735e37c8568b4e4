"""TrafficService on a real SQLite registry: every refusal changes nothing; rollouts move traffic and aliases
in one transaction; everything survives reopening the registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from maas.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from maas.registry import Registry
from maas.traffic import RolloutState, TrafficService, TrafficSplit
from maas.traffic.rollout import Verdict, after_verdict
from maas.types import Signature, TensorSpec

SIG = Signature((TensorSpec("x", "FP32", (-1, 4)),), (TensorSpec("y", "FP32", (-1, 3)),))
OTHER = Signature((TensorSpec("x", "FP32", (-1, 5)),), (TensorSpec("y", "FP32", (-1, 3)),))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def service(home: Path) -> Iterator[TrafficService]:
    reg = Registry.open(home, user="tester")
    for sig in (SIG, SIG, SIG, OTHER):  # versions 1-3 alike, 4 takes other inputs
        reg.publish("m", {"model.onnx": b"onnx"}, signature=sig)
    reg.publish("m", {"model.onnx": b"onnx"}, signature=SIG)  # 5, archived below
    reg.archive("m:5")
    reg.publish("m", {"model.onnx": b"onnx"}, signature=SIG)  # 6: the newest ready, the default
    yield TrafficService(reg)
    reg.close()


def split(*arms: tuple[int, int], shadow: tuple[int, float] | None = None) -> TrafficSplit:
    return TrafficSplit.from_dict({"arms": [{"version": v, "weight": w} for v, w in arms],
                                   "shadow": {"version": shadow[0], "fraction": shadow[1]} if shadow else None})


def test_a_split_is_stored_and_survives_reopening(service: TrafficService, home: Path) -> None:
    assert service.describe("m")["default"] is True
    service.set_split("m", split((1, 90), (2, 10), shadow=(3, 0.25)))
    with Registry.open(home) as again:
        doc = TrafficService(again).describe("m")
    assert doc["arms"] == [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]
    assert doc["shadow"] == {"version": 3, "fraction": 0.25} and doc["default"] is False
    service.clear_split("m")
    assert service.get_split("m") is None


@pytest.mark.parametrize(("arms", "shadow", "error", "message"), [
    (((1, 50), (9, 50)), None, InvalidArgument, "m:9 does not exist"),
    (((1, 50), (5, 50)), None, InvalidArgument, "archived"),
    (((1, 50), (4, 50)), None, InvalidArgument, "signature of m:4 differs"),
    (((1, 100),), (4, 0.5), InvalidArgument, "signature of m:4 differs"),
])
def test_bad_splits_change_nothing(service: TrafficService, arms: tuple[tuple[int, int], ...],
                                   shadow: tuple[int, float] | None, error: type[Exception], message: str) -> None:
    service.set_split("m", split((1, 80), (2, 20)))
    with pytest.raises(error, match=message):
        service.set_split("m", split(*arms, shadow=shadow))
    assert service.describe("m")["arms"] == [{"version": 1, "weight": 80}, {"version": 2, "weight": 20}]
    with pytest.raises(NotFound):
        service.set_split("nope", split((1, 100)))


def test_rollout_pins_production_and_refuses_a_second_one(service: TrafficService) -> None:
    service.registry.set_alias("m", "production", 1)
    r = service.start_rollout("m", 2, steps=[10, 50, 100], interval_s=1)
    assert (r.state, r.stable, r.candidate, r.weights()) == (RolloutState.RUNNING, 1, 2,
                                                             {"stable": 90, "candidate": 10})
    assert service.get_split("m") == split((1, 90), (2, 10))
    with pytest.raises(AlreadyExists, match="already has a running rollout"):
        service.start_rollout("m", 3)
    with pytest.raises(AlreadyExists, match="rollout"):
        service.set_split("m", split((1, 100)))
    assert [e.kind for e in service.get_rollout("m").events] == ["started"]


@pytest.mark.parametrize(("to", "kwargs", "message"), [
    (4, {}, "signature of m:4 differs"),
    (5, {}, "archived"),
    (9, {}, "does not exist"),
    (6, {}, "already serves"),  # the default
    (2, {"steps": [50, 10]}, "increase"),
    (2, {"interval_s": 0}, "interval_s"),
    (2, {"thresholds": {"min_agreement": 3}}, "min_agreement"),
])
def test_bad_rollouts_change_nothing(service: TrafficService, to: int, kwargs: dict[str, object],
                                     message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        service.start_rollout("m", to, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        service.get_rollout("m")
    assert service.get_split("m") is None and "production" not in service.registry.get_model("m").aliases


def test_decisions_move_traffic_and_promote_in_one_transaction(service: TrafficService, home: Path) -> None:
    service.registry.set_alias("m", "production", 1)
    r = service.start_rollout("m", 2, steps=[10, 50, 100], interval_s=1)
    for _ in range(2):
        t = after_verdict(r, Verdict.SUCCESSFUL, "ok", 0)
        assert service.store.transition(r.id, r.generation, state=t.state, step=t.step, kind=t.kind,
                                        verdict="successful", figures={"x": 1}, reason=t.reason, by="test",
                                        candidate_weight=t.candidate_weight, promote=t.promote)
        assert not service.store.transition(r.id, r.generation, state=t.state, step=t.step, kind=t.kind,
                                            verdict="successful", figures={}, reason="late", by="other",
                                            candidate_weight=t.candidate_weight)  # a stale generation loses
        r = service.get_rollout("m")
    assert r.state is RolloutState.SUCCEEDED and r.weights() == {"stable": 0, "candidate": 100}
    assert service.get_split("m") is None and service.registry.get("m@production").version == 2
    with Registry.open(home) as again:
        kinds = [e.kind for e in TrafficService(again).get_rollout("m").events]
    assert kinds == ["started", "step", "succeeded"]


def test_pause_resume_abort_promote(service: TrafficService) -> None:
    service.start_rollout("m", 2, steps=[20, 100], interval_s=1)  # the default 6 becomes pinned production
    assert service.registry.get("m@production").version == 6
    assert service.pause("m").state is RolloutState.PAUSED
    with pytest.raises(FailedPrecondition, match="paused, not running"):
        service.pause("m")
    assert service.resume("m").state is RolloutState.RUNNING
    r = service.abort("m")
    assert r.state is RolloutState.ABORTED and service.get_split("m") is None
    with pytest.raises(FailedPrecondition):
        service.promote("m")
    service.start_rollout("m", 2, steps=[20, 100], interval_s=1)
    r = service.promote("m")
    assert r.state is RolloutState.SUCCEEDED and service.registry.get("m@production").version == 2
    assert [e.kind for e in r.events] == ["started", "promoted"]


def test_a_rollouts_state_changes_move_the_registry_revision_and_a_hold_does_not(service: TrafficService) -> None:
    """Idle rollout controllers and every server's router follow the revision (controller.py)."""
    revision = service.registry.revision
    before = revision()
    r = service.start_rollout("m", 2, steps=[10, 50, 100], interval_s=1)
    assert revision() > before
    before = revision()
    assert service.store.transition(r.id, r.generation, state=RolloutState.RUNNING, step=r.step, kind="held",
                                    verdict="inconclusive", figures={}, reason="too few requests", by="test",
                                    candidate_weight=None)
    assert revision() == before  # a hold changes nothing servers act on
    for command in (service.pause, service.resume):
        before = revision()
        command("m")
        assert revision() > before, command.__name__
