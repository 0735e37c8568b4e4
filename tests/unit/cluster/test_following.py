"""The driver's follower: which models get a deployment as the registry changes, without Ray (its calls recorded)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from maas.cluster.following import DeploymentFollower, app_name, changes, model_of
from maas.cluster.scaling import ReplicaScaling, resolve
from maas.registry import Registry

from ...integration.models import linear_model


class Ray:
    """Records the follower's deploy and delete calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def deploy(self, scalings: Mapping[str, ReplicaScaling], wait: bool) -> None:
        self.calls.append(("deploy", {n: s.deployment_options().get("num_replicas") for n, s in scalings.items()}))

    def delete(self, names: list[str]) -> None:
        self.calls.append(("delete", names))

    def taken(self) -> list[tuple[str, Any]]:
        calls, self.calls = self.calls, []
        return calls


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    with Registry.open(tmp_path / "home") as r:
        yield r


def _publish(reg: Registry, name: str, replicas: int = 1) -> None:
    reg.publish(name, {"model.onnx": linear_model()}, source_format="onnx",
                config={"scaling": {"num_replicas": replicas}})


def test_application_names() -> None:
    assert app_name("lin") == "model-lin" and model_of("model-lin") == "lin" and model_of("maas") is None


def test_changes_deploys_new_and_resized_models_and_deletes_the_gone() -> None:
    one, two = resolve({}, "a", None), resolve({}, "a", {"num_replicas": 2})
    assert changes({"a": one, "b": one}, {"a": one, "c": one}) == ({"c": one}, ["b"])
    assert changes({"a": one}, {"a": two}) == ({"a": two}, [])
    assert changes({"a": one}, {"a": one}) == ({}, [])
    # the same deployment options: nothing to redeploy (max_calls is the ingress's, num_replicas 1 the default)
    assert changes({"a": one}, {"a": resolve({"scaling": {"num_replicas": 1}}, "a", {"max_calls": 9})}) == ({}, [])


def test_a_model_registered_later_is_deployed_and_a_deleted_one_removed(reg: Registry) -> None:
    _publish(reg, "a")
    ray = Ray()
    follower = DeploymentFollower(reg, None, {"b": {"num_replicas": 3}}, ray.deploy, ray.delete)
    follower.start({"a": resolve({}, "a", None)}, stale=["old"])
    assert ray.taken() == [("delete", ["old"]), ("deploy", {"a": 1})]
    assert follower.sync() is False and ray.taken() == []  # the revision has not moved: nothing listed
    _publish(reg, "b")  # the --set of the start applies to a model registered later
    assert follower.sync() is True and ray.taken() == [("deploy", {"b": 3})]
    _publish(reg, "a", replicas=2)  # a new default version with another size: redeployed
    assert follower.sync() is True and ray.taken() == [("deploy", {"a": 2})]
    reg.set_alias("a", "production", 2)  # the revision moved, the size did not: nothing to do
    assert follower.sync() is False and ray.taken() == []
    reg.delete_model("b")
    assert follower.sync() is True and ray.taken() == [("delete", ["b"])]
    assert set(follower.deployed) == {"a"}


def test_a_model_with_every_version_archived_loses_its_deployment(reg: Registry) -> None:
    _publish(reg, "a")
    ray = Ray()
    follower = DeploymentFollower(reg, None, {}, ray.deploy, ray.delete)
    follower.start({"a": resolve({}, "a", None)}, stale=[])
    ray.taken()
    reg.archive("a:1")
    assert follower.sync() is True and ray.taken() == [("delete", ["a"])]


def test_named_models_only_and_a_bad_scaling_keeps_the_current_size(reg: Registry) -> None:
    _publish(reg, "a")
    ray = Ray()
    follower = DeploymentFollower(reg, ["a"], {}, ray.deploy, ray.delete)
    follower.start({"a": resolve({}, "a", None)}, stale=[])
    ray.taken()
    _publish(reg, "other")  # not named at the start: not followed
    reg.publish("a", {"model.onnx": linear_model()}, source_format="onnx", config={"scaling": {"replicas": 2}})
    assert follower.sync() is False and ray.taken() == []  # the typo is logged; a keeps its deployment


def test_a_failed_ray_call_is_tried_again_at_the_next_poll(reg: Registry) -> None:
    ray, fail = Ray(), [True]

    def deploy(scalings: Mapping[str, ReplicaScaling], wait: bool) -> None:
        if fail[0]:
            raise RuntimeError("the controller is away")
        ray.deploy(scalings, wait)

    follower = DeploymentFollower(reg, None, {}, deploy, ray.delete)
    follower.start({}, stale=[])
    _publish(reg, "a")
    with pytest.raises(RuntimeError):
        follower.sync()
    fail[0] = False
    assert follower.sync() is True and ray.taken() == [("deploy", {"a": 1})]
