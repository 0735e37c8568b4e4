"""Replica counts and autoscaling from a version's config and `--set`, as Ray Serve's deployment options."""

from __future__ import annotations

import pytest

from maas.cluster.scaling import DEFAULT_MAX_ONGOING, resolve, split_overrides
from maas.errors import InvalidArgument


def test_fixed_replicas_by_default_and_from_config() -> None:
    assert resolve({}, "m", None).deployment_options() == {
        "max_ongoing_requests": DEFAULT_MAX_ONGOING, "ray_actor_options": {"num_cpus": 1.0}, "num_replicas": 1}
    options = resolve({"scaling": {"num_replicas": 3, "num_cpus": 0.5}}, "m", None).deployment_options()
    assert options["num_replicas"] == 3 and options["ray_actor_options"] == {"num_cpus": 0.5}


def test_autoscaling_from_config_with_serve_time_overrides() -> None:
    config = {"scaling": {"min_replicas": 2, "max_replicas": 4, "target_ongoing_requests": 8}}
    auto = resolve(config, "m", {"upscale_delay_s": 1.0, "max_replicas": 6}).deployment_options()["autoscaling_config"]
    assert auto == {"min_replicas": 2, "initial_replicas": 2, "max_replicas": 6, "target_ongoing_requests": 8.0,
                    "upscale_delay_s": 1.0}
    # --set NAME.num_replicas replaces the stored autoscaling rather than clashing with it, and back
    assert resolve(config, "m", {"num_replicas": 2}).deployment_options()["num_replicas"] == 2
    fixed = resolve({"scaling": {"num_replicas": 2}}, "m", {"max_replicas": 3}).deployment_options()
    assert "num_replicas" not in fixed and fixed["autoscaling_config"]["max_replicas"] == 3


@pytest.mark.parametrize("config, message", [
    ({"scaling": {"replicas": 2}}, "unknown config.scaling key 'replicas'"),
    ({"scaling": {"num_replicas": "two"}}, "num_replicas needs an integer"),
    ({"scaling": {"num_replicas": 2, "max_replicas": 3}}, "not both"),
    ({"scaling": {"min_replicas": 3, "max_replicas": 2}}, "min_replicas <= max_replicas"),
    ({"scaling": {"num_cpus": -1}}, "num_cpus cannot be negative"),
    ({"scaling": [1]}, "must be an object"),
])
def test_bad_scaling_is_refused(config: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        resolve(config, "m", None)


def test_set_items_split_into_scaling_and_batching() -> None:
    scaling, rest = split_overrides(["a.num_replicas=2", "a.max_batch_size=8", "b.target_ongoing_requests=4.5"])
    assert scaling == {"a": {"num_replicas": 2}, "b": {"target_ongoing_requests": 4.5}}
    assert rest == ["a.max_batch_size=8"]
    with pytest.raises(InvalidArgument, match="num_replicas needs an integer"):
        split_overrides(["a.num_replicas=x"])


def test_calls_in_flight_before_the_ingress_groups_requests() -> None:
    assert resolve({}, "m", None).calls_in_flight() == 2  # one replica: one call computing, one travelling
    assert resolve({"scaling": {"num_replicas": 3}}, "m", None).calls_in_flight() == 6
    # autoscaled: as many as read "every replica at its target", so the autoscaler still sees the load
    auto = {"scaling": {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 2.5}}
    assert resolve(auto, "m", None).calls_in_flight() == 10
    assert resolve(auto, "m", {"max_calls": 3}).calls_in_flight() == 3
    with pytest.raises(InvalidArgument, match="max_calls must be"):
        resolve({}, "m", {"max_calls": 0})
