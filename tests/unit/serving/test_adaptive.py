"""The adaptive layout (#19): which versions get a solo all-threads session, and when the batcher uses it.

Timing is replaced by fixed figures where the decision is tested, so nothing here depends on the machine.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from maas.config import Settings
from maas.registry import Registry
from maas.serving import adaptive
from maas.serving.batcher import Batcher
from maas.serving.loaded import build_parts, onnxruntime_factory
from maas.serving.options import BatchingPolicy, ServingOptions, parse_overrides

from .serving_models import linear
from .test_batcher import HANG_GUARD_S, GatedRuntime, policy, rows


class Recorder:
    """Doubles its input and counts its runs (never blocks)."""

    inputs = GatedRuntime.inputs
    outputs = GatedRuntime.outputs

    def __init__(self) -> None:
        self.runs = 0

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.runs += 1
        return {"y": inputs["x"] * 2}

    def close(self) -> None:
        pass


def test_a_lone_request_runs_on_the_solo_session_and_a_queue_on_the_instances() -> None:
    busy, solo = GatedRuntime(), Recorder()

    async def body() -> None:
        with ThreadPoolExecutor(3) as pool:
            batcher = Batcher("t:1", policy(), [busy], pool, solo=solo)
            batcher.start()
            try:
                out = await batcher.submit(rows(1, 0.0), HANG_GUARD_S)  # nothing else queued or running
                np.testing.assert_array_equal(out["y"], rows(1, 0.0)["x"] * 2)
                assert solo.runs == 1 and busy.batches == []
                await batcher.submit(rows(1, 5.0), HANG_GUARD_S)
                assert solo.runs == 2
                # While the solo session runs, the next batch is not alone: it goes to an instance.
                solo_gate = GatedRuntime()
                batcher2 = Batcher("t:2", policy(), [busy], pool, solo=solo_gate)
                batcher2.start()
                lone = asyncio.ensure_future(batcher2.submit(rows(1, 2.0), HANG_GUARD_S))
                assert await asyncio.to_thread(solo_gate.started.wait, HANG_GUARD_S)  # on solo, held by its gate
                queued = asyncio.ensure_future(batcher2.submit(rows(1, 3.0), HANG_GUARD_S))
                assert await asyncio.to_thread(busy.started.wait, HANG_GUARD_S)  # solo busy: the instance runs it
                busy.gate.set()
                solo_gate.gate.set()
                await asyncio.gather(lone, queued)
                assert busy.batches == [1] and solo_gate.batches == [1]
                await batcher2.stop(HANG_GUARD_S)
            finally:
                busy.gate.set()
                await batcher.stop(HANG_GUARD_S)

    asyncio.run(asyncio.wait_for(body(), HANG_GUARD_S))


def test_policy_is_adaptive_only_when_neither_instances_nor_threads_is_given() -> None:
    options = ServingOptions()
    assert BatchingPolicy.resolve({}, options, "m", True).adaptive
    assert not BatchingPolicy.resolve({"batching": {"instances": 2}}, options, "m", True).adaptive
    assert not BatchingPolicy.resolve({"batching": {"intra_op_threads": 1}}, options, "m", True).adaptive
    over = ServingOptions(overrides=parse_overrides(["m.instances=1"]))
    assert not BatchingPolicy.resolve({}, over, "m", True).adaptive
    assert not BatchingPolicy.resolve({}, ServingOptions(adaptive_layout=False), "m", True).adaptive


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(Settings(home=tmp_path / "home"))


def _parts(registry: Registry, config: dict | None, monkeypatch: pytest.MonkeyPatch, timings: list[float]):  # type: ignore[no-untyped-def]
    """Build with fixed timings: the first session's batch-1 run, then (instance, solo) timed alternately."""
    monkeypatch.setattr(adaptive, "cores", lambda: 2)
    figures = iter(timings)
    monkeypatch.setattr(adaptive, "time_batch1", lambda runtime, inputs: next(figures))
    monkeypatch.setattr(adaptive, "time_alternately", lambda a, b, inputs: (next(figures), next(figures)))
    version = registry.publish("lin", {"model.onnx": linear()}, config=config)
    return build_parts(registry, version, ServingOptions(), onnxruntime_factory)


def test_a_compute_bound_version_gets_an_instance_per_core_and_a_faster_solo_session(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = _parts(registry, None, monkeypatch, [0.010, 0.011, 0.005])  # 10-11 ms on one thread, 5 ms on two
    assert len(parts.runtimes) == 2 and parts.policy.instances == 2 and parts.policy.intra_op_threads == 1
    assert parts.solo is not None
    out = parts.solo.run({"x": np.ones((1, 4), np.float32)})
    assert out["y"].shape == (1, 3)


def test_a_solo_session_that_is_not_faster_is_dropped(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = _parts(registry, None, monkeypatch, [0.010, 0.010, 0.009])
    assert len(parts.runtimes) == 2 and parts.solo is None


def test_the_solo_session_is_judged_against_the_instance_timed_beside_it(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first timing (5 ms, a quiet moment) would make the solo's 6 ms a loss; timed in the same busy spell,
    # the instance took 12 ms, so the solo session is worth keeping.
    parts = _parts(registry, None, monkeypatch, [0.005, 0.012, 0.006])
    assert parts.solo is not None


def test_a_light_version_keeps_one_single_threaded_session(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = _parts(registry, None, monkeypatch, [0.0001])
    assert len(parts.runtimes) == 1 and parts.policy.instances == 1 and parts.solo is None


def test_explicit_instances_and_threads_are_kept_exactly(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    config = {"batching": {"instances": 3, "intra_op_threads": 1}}
    parts = _parts(registry, config, monkeypatch, [])  # never timed: next() on the empty list would raise
    assert len(parts.runtimes) == 3 and parts.policy.instances == 3 and parts.solo is None


def _probed(registry: Registry, monkeypatch: pytest.MonkeyPatch, one: float, batch: float,
            config: dict | None = None):  # type: ignore[no-untyped-def]
    """A compute-bound version (10 ms a row alone) whose batch of `rows` rows takes `batch` s to run."""
    probes: list[int] = []

    def probe(runtime: object, inputs: object, rows: int) -> tuple[float, float]:
        probes.append(rows)
        return one, batch

    monkeypatch.setattr(adaptive, "time_rows_alternately", probe)
    return _parts(registry, config, monkeypatch, [0.010, 0.011, 0.005]), probes


def test_a_compute_bound_version_whose_rows_cost_as_much_batched_prefers_batches_of_one(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts, probes = _probed(registry, monkeypatch, 0.010, 0.085)  # 8 rows: 10.6 ms a row against 10 alone
    assert probes == [8] and parts.policy.preferred_batch_sizes == (1,)
    assert parts.policy.max_batch_size > 1  # requests carrying several rows are still taken whole


def test_a_compute_bound_version_that_batches_cheaper_keeps_its_batches(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts, _ = _probed(registry, monkeypatch, 0.010, 0.040)  # 5 ms a row in a batch of 8
    assert parts.policy.preferred_batch_sizes == ()


def test_configured_batch_sizes_are_never_probed(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    for config in ({"batching": {"preferred_batch_sizes": [4]}}, {"max_batch_size": 1}):
        parts, probes = _probed(registry, monkeypatch, 0.010, 0.085, config)
        assert probes == [] and parts.policy.preferred_batch_sizes == tuple(
            config.get("batching", {}).get("preferred_batch_sizes", ()))


def test_a_slow_model_is_probed_with_fewer_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = BatchingPolicy(32, 0, (), 1, 1, 100, adaptive=True)
    seen: list[int] = []

    def probe(runtime: object, inputs: object, rows: int) -> tuple[float, float]:
        seen.append(rows)
        return 0.3, 0.3 * rows  # a row costs the same alone and batched

    monkeypatch.setattr(adaptive, "time_rows_alternately", probe)
    assert adaptive.batching_pays(Recorder(), policy, Recorder.inputs, 0.3) is False
    assert adaptive.batching_pays(Recorder(), policy, Recorder.inputs, 0.05) is False
    assert seen == [2, 6]  # within about PROBE_BUDGET_S: (runs + 1) x rows x t1


def test_the_real_probe_of_a_tiny_model_finds_batching_pays() -> None:
    runtime = onnxruntime_factory(linear(), 1, False)
    one, batch = adaptive.time_rows_alternately(runtime, runtime.inputs, 8)
    assert one is not None and batch is not None and batch / 8 * adaptive.BATCH_GAIN <= one


def test_the_real_timing_of_a_tiny_model_is_light() -> None:
    runtime = onnxruntime_factory(linear(), 1, False)
    t = adaptive.time_batch1(runtime, runtime.inputs)
    assert t is not None and t < adaptive.HEAVY_S


def test_alternate_timing_gives_each_session_its_best_run() -> None:
    one, two = onnxruntime_factory(linear(), 1, False), onnxruntime_factory(linear(), 2, False)
    a, b = adaptive.time_alternately(one, two, one.inputs)
    assert a is not None and b is not None and 0 < a < adaptive.HEAVY_S and 0 < b < adaptive.HEAVY_S


def test_alternate_timing_of_a_model_refusing_zeros_is_none() -> None:
    class Refuses(Recorder):
        def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            raise ValueError("no zeros")

    assert adaptive.time_alternately(Recorder(), Refuses(), Recorder.inputs) == (None, None)
