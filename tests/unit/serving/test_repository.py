"""Which versions serve: following the registry, loading on demand, failures kept apart, load/unload."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from maas.errors import FailedPrecondition, NotFound, Unavailable
from maas.registry import MODEL_ROLE, Registry
from maas.serving import ServingDataPlane
from maas.serving.contract import InferenceRequest, InferTensor

from . import serving_models as models
from .serving_models import serve

X = np.zeros((1, 2), dtype=np.float32)




async def added(plane: ServingDataPlane, name: str = "adder", version: str | None = None) -> float:
    """Which constant the serving version adds (each test version adds its own number)."""
    response = await plane.infer(InferenceRequest(name, version, [InferTensor("x", "FP32", (1, 2), X)]))
    return float(response.outputs[0].data[0, 0])


def publish_adders(registry: Registry, *values: float) -> None:
    for value in values:
        models.publish(registry, "adder", models.add_constant(value))


def test_an_alias_move_is_followed_without_restart(serving_registry: Registry) -> None:
    publish_adders(serving_registry, 1, 2)
    serving_registry.set_alias("adder", "production", 1)

    async def body(plane: ServingDataPlane) -> None:
        assert await added(plane) == 1
        serving_registry.set_alias("adder", "production", 2)
        await plane.repository.refresh()
        assert await added(plane) == 2
        assert await added(plane, version="production") == 2

    serve(serving_registry, body)


def test_the_background_poll_picks_up_a_new_version(serving_registry: Registry) -> None:
    publish_adders(serving_registry, 1)

    async def body(plane: ServingDataPlane) -> None:
        assert await added(plane) == 1
        await asyncio.to_thread(publish_adders, serving_registry, 2)
        while await added(plane) != 2:  # the hang guard bounds this; the poll runs every 10 ms
            await asyncio.sleep(0.01)
        entries = await plane.repository_index(ready_only=True)
        assert [(e.name, e.version) for e in entries] == [("adder", "2")]

    serve(serving_registry, body, poll_interval_s=0.01)


def test_an_explicit_ready_version_is_loaded_on_demand(serving_registry: Registry) -> None:
    publish_adders(serving_registry, 1, 2)

    async def body(plane: ServingDataPlane) -> None:
        assert not await plane.model_ready("adder", "1")
        assert await added(plane, version="1") == 1
        assert await plane.model_ready("adder", "1")
        assert await added(plane) == 2
        index = await plane.repository_index()
        assert sorted((e.version, e.state) for e in index) == [("1", "READY"), ("2", "READY")]
        with pytest.raises(NotFound):
            await added(plane, version="3")

    serve(serving_registry, body)


def test_a_model_that_fails_to_load_is_unavailable_while_others_serve(serving_registry: Registry) -> None:
    publish_adders(serving_registry, 1)
    serving_registry.publish("broken", {MODEL_ROLE: b"this is not onnx"})

    async def body(plane: ServingDataPlane) -> None:
        assert plane.ready()
        assert await added(plane) == 1
        assert not await plane.model_ready("broken")
        with pytest.raises(Unavailable, match="failed to load"):
            await plane.infer(InferenceRequest("broken", None, [InferTensor("x", "FP32", (1, 2), X)]))
        entries = {e.name: e for e in await plane.repository_index()}
        assert entries["broken"].state == "UNAVAILABLE" and "onnxruntime" in entries["broken"].reason
        assert entries["adder"].state == "READY"
        with pytest.raises(FailedPrecondition):
            await plane.load("broken")

    serve(serving_registry, body)


def test_unload_and_load_by_name(serving_registry: Registry) -> None:
    publish_adders(serving_registry, 1)

    async def body(plane: ServingDataPlane) -> None:
        await plane.unload("adder")
        assert not await plane.model_ready("adder")
        with pytest.raises(Unavailable):
            await added(plane)
        await plane.repository.refresh(force=True)  # the poller must not bring it back
        (entry,) = await plane.repository_index()
        assert (entry.state, entry.reason) == ("UNAVAILABLE", "unloaded")
        await plane.load("adder")
        assert await added(plane) == 1
        with pytest.raises(NotFound):
            await plane.load("nope")
        with pytest.raises(NotFound):
            await plane.unload("nope")

    serve(serving_registry, body)


def test_only_selected_models_are_served(serving_registry: Registry) -> None:
    publish_adders(serving_registry, 1)
    models.publish(serving_registry, "linear", models.linear())

    async def body(plane: ServingDataPlane) -> None:
        assert await added(plane) == 1
        assert not await plane.model_ready("linear")
        with pytest.raises(Unavailable):
            await plane.model_metadata("linear")
        await plane.load("linear")
        assert await plane.model_ready("linear")

    serve(serving_registry, body, models=("adder",))
