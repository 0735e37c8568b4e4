"""The example configs stay valid; their full runs (about a minute each on 2 cores) are marked slow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from maas.training import load, train

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.mark.parametrize("path", ["breast_cancer/train.yaml", "digits/cnn.yaml", "digits/keras_cnn.yaml"])
def test_example_configs_are_valid(path: str) -> None:
    cfg = load(EXAMPLES / path)
    assert cfg.name and cfg.data.source.startswith("sklearn:")


@pytest.mark.slow
def test_breast_cancer_search_beats_the_defaults(reg: Any) -> None:
    result = train(EXAMPLES / "breast_cancer/train.yaml", registry=reg)
    assert result.search is not None and result.search["best_score"] > result.search["default_score"]
    assert result.version.metrics["search"]["trials"] <= 10


@pytest.mark.slow
def test_digits_seed_cnn_reaches_97_percent(reg: Any) -> None:
    result = train(EXAMPLES / "digits/cnn.yaml", registry=reg)
    assert result.test_metrics["accuracy"] >= 0.97


@pytest.mark.slow
def test_digits_seed_keras_cnn_reaches_96_percent(reg: Any) -> None:
    # Measured 0.9666 with seed 0 (the torch twin in cnn.yaml passes 0.97): Keras' initializers differ.
    result = train(EXAMPLES / "digits/keras_cnn.yaml", registry=reg)
    assert result.version.source_format == "keras"
    assert result.test_metrics["accuracy"] >= 0.96
