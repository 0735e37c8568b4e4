"""The ingress's discovery of model deployments: attached once running, detached once gone or no longer served;
until then the ingress answers itself. Ray's calls are fakes; the data plane and the registry are real."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maas.cluster.dataplane import ClusterDataPlane
from maas.cluster.discovery import DeploymentDiscovery
from maas.registry import Registry
from maas.serving.contract import InferenceRequest, InferenceResponse, InferTensor
from maas.serving.options import ServingOptions

from ...integration.models import LINEAR_X, linear_model


class Handle:
    """A deployment's handle: `infer_many.remote(requests)` answers each request as replica `tag`."""

    def __init__(self, tag: str) -> None:
        self.tag, self.infer_many = tag, self

    def remote(self, requests: list[InferenceRequest]) -> Any:
        async def answer() -> list[tuple[str, Any]]:
            return [("ok", InferenceResponse(r.model_name, "1", [], parameters={"maas_replica": self.tag}))
                    for r in requests]

        return answer()


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    with Registry.open(tmp_path / "home") as r:
        r.publish("a", {"model.onnx": linear_model()}, source_format="onnx")
        r.publish("b", {"model.onnx": linear_model()}, source_format="onnx", config={"scaling": {"num_replicas": 3}})
        yield r


def _request(model: str) -> InferenceRequest:
    return InferenceRequest(model, None, [InferTensor("x", "FP32", LINEAR_X.shape, LINEAR_X)], protocol="test")


def test_deployments_are_attached_when_running_and_detached_when_gone(reg: Registry) -> None:
    with warnings.catch_warnings():  # Ray's own pydantic models warn on import (not ours to fix)
        warnings.simplefilter("ignore")
        pytest.importorskip("ray.serve.exceptions")  # the data plane's forwarding names Ray's exceptions
    statuses: dict[str, str] = {"a": "DEPLOYING"}
    looked: list[str] = []

    def max_calls_of(name: str) -> int:
        looked.append(name)
        return 6 if name == "b" else 2

    async def body() -> None:
        dp = ClusterDataPlane(reg, ServingOptions(inference_threads=1, poll_interval_s=0.05))
        await dp.start()
        discovery = DeploymentDiscovery(dp, lambda: statuses, Handle, max_calls_of, interval_s=0.05)
        try:
            assert await discovery.sync() is False and dp.handles == {}  # a still deploying: the ingress serves it
            local = await dp.infer(_request("a"))
            assert "maas_replica" not in local.parameters
            assert local.outputs[0].data.shape == (LINEAR_X.shape[0], 3)
            statuses.update(a="RUNNING", b="RUNNING")
            assert await discovery.sync() is True and sorted(dp.handles) == ["a", "b"]
            assert dp.coalescers["b"].max_calls == 6  # b's config: 3 replicas x 2 calls
            assert (await dp.infer(_request("a"))).parameters["maas_replica"] == "a"
            assert dp.traffic.controller.served("a") is False  # its replicas judge its rollouts, not the ingress
            statuses["a"] = "DEPLOYING"  # a redeploy (new size) in progress: a stays attached
            assert await discovery.sync() is True and "a" in dp.handles
            del statuses["a"]  # its application deleted: back to the ingress
            assert await discovery.sync() is False and sorted(dp.handles) == ["b"]
            assert "maas_replica" not in (await dp.infer(_request("a"))).parameters
            assert dp.traffic.controller.served("a") is True
            # a model deleted from the registry is detached at the ingress's own poll, before Ray deletes it
            discovery.start()
            reg.delete_model("b")
            for _ in range(200):
                if "b" not in dp.handles:
                    break
                await asyncio.sleep(0.05)
            assert "b" not in dp.handles
            statuses["a"] = "RUNNING"  # found by the follow loop's own look, no registry change needed
            for _ in range(200):
                if "a" in dp.handles:
                    break
                await asyncio.sleep(0.05)
            assert dp.handles.keys() == {"a"}
            # counters of the calls survive a detach and a new attach
            assert dp.coalescers["a"].sent_calls == 1
        finally:
            await discovery.stop()
            await dp.stop(5.0)

    asyncio.run(asyncio.wait_for(body(), 60))
