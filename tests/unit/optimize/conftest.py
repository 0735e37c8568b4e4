"""One registry for the optimize tests holding the digits CNN as version 1 (training it is the slow part)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from maas.optimize.data import Dataset, load_data
from maas.registry import ModelVersion, Registry
from maas.testing.digits import SIGNATURE, publish_digits_cnn

from .optimize_support import TEST_DATA


@pytest.fixture(scope="session")
def opt_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("maas-home")


@pytest.fixture(scope="session")
def reg(opt_home: Path) -> Iterator[Registry]:
    r = Registry.open(opt_home)
    yield r
    r.close()


@pytest.fixture(scope="session")
def teacher(reg: Registry) -> ModelVersion:
    return publish_digits_cnn(reg, "digits", epochs=3)


@pytest.fixture(scope="session")
def test_data() -> Dataset:
    return load_data(TEST_DATA, SIGNATURE)
