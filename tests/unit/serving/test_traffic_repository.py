"""The split as one more input of the repository: bare requests follow it, explicit versions bypass it; a
version serves only after its warm-up (a stored sample that fails keeps it out); closing waits for the
requests inside a version."""

from __future__ import annotations

import asyncio
import io

import numpy as np

from maas.registry import MODEL_ROLE, Registry
from maas.serving import ServingDataPlane
from maas.serving.contract import InferenceRequest, InferTensor
from maas.serving.warmup import SAMPLE_ROLE
from maas.traffic import TrafficService, TrafficSplit

from . import serving_models as models
from .serving_models import serve

X = np.zeros((1, 2), dtype=np.float32)


async def added(plane: ServingDataPlane, version: str | None = None) -> tuple[float, str | None]:
    request = InferenceRequest("adder", version, [InferTensor("x", "FP32", (1, 2), X)])
    response = await plane.infer(request)
    return float(response.outputs[0].data[0, 0]), request.arm


def npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def test_bare_requests_follow_the_split_and_explicit_versions_bypass(serving_registry: Registry) -> None:
    for value in (1, 2):
        models.publish(serving_registry, "adder", models.add_constant(value))
    serving_registry.set_alias("adder", "production", 1)

    async def body(plane: ServingDataPlane) -> None:
        assert await added(plane) == (1, None)
        split = TrafficSplit.from_dict({"arms": [{"version": 1, "weight": 0}, {"version": 2, "weight": 100}]})
        await asyncio.to_thread(TrafficService(serving_registry).set_split, "adder", split)
        await plane.repository.refresh()
        assert await added(plane) == (2, "2")  # the arm is on the request, for logs and statistics
        assert await added(plane, "1") == (1, None)
        await asyncio.to_thread(TrafficService(serving_registry).clear_split, "adder")
        await plane.repository.refresh()
        assert await added(plane) == (1, None)
        assert [v.number for v in plane.repository.loaded("adder")] == [1]  # 2 left once idle

    serve(serving_registry, body)


def test_a_version_whose_stored_sample_fails_never_takes_traffic(serving_registry: Registry) -> None:
    models.publish(serving_registry, "adder", models.add_constant(1), aliases=("production",))
    serving_registry.publish("adder", {MODEL_ROLE: models.add_constant(2),
                                       SAMPLE_ROLE: npz(x=np.zeros((1, 2), np.float32))})
    serving_registry.publish("adder", {MODEL_ROLE: models.add_constant(3),
                                       SAMPLE_ROLE: npz(x=np.zeros((1, 7), np.float32))})  # a wrong shape

    async def body(plane: ServingDataPlane) -> None:
        split = TrafficSplit.from_dict({"arms": [{"version": 2, "weight": 50}, {"version": 3, "weight": 50}]})
        await asyncio.to_thread(TrafficService(serving_registry).set_split, "adder", split)
        await plane.repository.refresh()
        answers = {(await added(plane))[0] for _ in range(20)}
        assert answers == {1}  # the split is not applied while one of its arms cannot serve
        assert "warm-up" in (plane.repository.load_failure("adder", 3) or "")
        assert plane.repository.load_failure("adder", 2) is None

    serve(serving_registry, body)


def test_closing_a_version_waits_for_its_requests(serving_registry: Registry) -> None:
    models.publish(serving_registry, "adder", models.add_constant(1))

    async def body(plane: ServingDataPlane) -> None:
        loaded = plane.repository.loaded("adder")[0]
        loaded.acquire()
        closing = asyncio.create_task(loaded.close(5.0))
        await asyncio.sleep(0.05)
        assert not closing.done()
        loaded.release()
        await asyncio.wait_for(closing, 5.0)

    serve(serving_registry, body)
