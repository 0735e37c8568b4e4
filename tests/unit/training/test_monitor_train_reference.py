"""`maas train` stores its training rows as the new version's reference statistics (monitor)."""

from __future__ import annotations

from typing import Any

from maas.training import train


def test_training_data_becomes_the_reference(reg: Any) -> None:
    cfg = {"name": "iris", "seed": 0, "data": {"source": "sklearn:iris"},
           "model": {"family": "logistic_regression", "params": {"max_iter": 300}}}
    result = train(cfg, registry=reg)
    found = reg.get_reference(result.version.ref)
    assert found is not None
    doc, source = found
    assert source.startswith("train ") and 0 < doc["rows"] < 150  # the training split, not the test rows
    assert len([c for c in doc["columns"] if c.startswith("in.")]) == 4  # one per iris feature
    assert any(c.startswith("out.") for c in doc["columns"])
