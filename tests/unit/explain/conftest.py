"""Registries shared by the explain unit tests: the two-feature model with a stored background set, and,
apart (training it is the expensive part), the digits CNN."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from maas.registry import Registry

from .explain_models import publish_digits, two_feature_model


@pytest.fixture(scope="session")
def explain_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("explain-unit")
    with Registry.open(home) as reg:
        reg.publish("tab", {"model.onnx": two_feature_model()})
        reg.set_explain_background("tab", {"x": np.random.default_rng(0).normal(size=(30, 4))}, source="unit rows")
    yield home


@pytest.fixture(scope="session")
def digits_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("explain-digits")
    with Registry.open(home) as reg:
        publish_digits(reg, epochs=1)
    yield home
