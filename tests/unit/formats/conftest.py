"""Shared fixtures for the importer tests: a fresh registry per test and small models trained once."""

from __future__ import annotations

import numpy as np
import pytest

from maas.registry import Registry


@pytest.fixture
def registry(tmp_path):
    reg = Registry.open(tmp_path / "home")
    yield reg
    reg.close()


def assert_empty(reg: Registry) -> None:
    """A refused import must leave no model and no version behind."""
    assert reg.list_models() == []


@pytest.fixture(scope="session")
def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    return train_test_split((x / 16.0).astype(np.float32), y, test_size=0.25, random_state=0)
