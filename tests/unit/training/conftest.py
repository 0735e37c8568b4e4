"""Fixtures for the training tests: a registry on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def reg(home: Path, tmp_path: Path) -> Iterator[Any]:
    from maas.registry import Registry

    r = Registry.open(home, database_url=f"sqlite:///{tmp_path / 'registry.db'}")
    yield r
    r.close()

