"""Constants and helpers the optimize tests share (fixtures live in conftest.py)."""

from __future__ import annotations

from maas.registry import Registry

TEST_DATA = "sklearn:digits:test"  # held-out: the CNN is trained on sklearn:digits:train


def count_versions(reg: Registry, name: str = "digits") -> int:
    return len(reg.list_versions(name))
