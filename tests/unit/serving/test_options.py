"""Serving options: per-model batching overrides as given to `maas serve --set`."""

from __future__ import annotations

import pytest

from maas.errors import InvalidArgument
from maas.registry import Registry
from maas.serving.dataplane import ServingDataPlane
from maas.serving.options import ModelOverrides, parse_overrides

from . import serving_models as models
from .test_dataplane import serve


def test_parse_overrides_merges_keys_per_model() -> None:
    got = parse_overrides(["m.max_batch_size=32", "m.preferred_batch_sizes=8,16", "n.instances=2"])
    assert got == {
        "m": ModelOverrides(max_batch_size=32, preferred_batch_sizes=(8, 16)),
        "n": ModelOverrides(instances=2),
    }


@pytest.mark.parametrize(
    "bad", ["m=3", "m.colour=1", "../x.instances=1", "m.instances=0", "m.max_batch_size=abc",
            "m.preferred_batch_sizes=0,4", ".instances=1"],
)
def test_bad_overrides_are_refused(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_overrides([bad])


def test_an_override_wins_over_the_version_config(serving_registry: Registry) -> None:
    models.publish(serving_registry, "lin", models.linear(), config={"max_batch_size": 4})

    async def body(plane: ServingDataPlane) -> int:
        return (await plane.model_config("lin")).max_batch_size

    assert serve(serving_registry, body) == 4
    assert serve(serving_registry, body, overrides=parse_overrides(["lin.max_batch_size=16"])) == 16
