"""Fixtures of the serving tests: a fresh registry per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from maas.registry import Registry


@pytest.fixture
def serving_registry(tmp_path: Path) -> Iterator[Registry]:
    reg = Registry.open(tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'registry.db'}", user="test")
    yield reg
    reg.close()
