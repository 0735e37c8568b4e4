"""`maas eval` keeps its data as the reference statistics of a version that has none (monitor)."""

from __future__ import annotations

from typing import Any

import numpy as np

from maas.evaluate import evaluate
from maas.monitor.reference import reference_from_data
from maas.registry import Registry


def test_eval_stores_a_reference_once(reg: Registry, publish: Any) -> None:
    v = publish("iris")
    assert reg.get_reference(v.ref) is None
    evaluate(reg, "iris", "sklearn:iris", latency=False)
    doc, source = reg.get_reference(v.ref)  # type: ignore[misc]
    assert source == "eval sklearn:iris" and doc["rows"] == 150
    assert sorted(doc["columns"])[:2] == ["in.input[0]", "in.input[1]"]
    assert any(c.startswith("out.") for c in doc["columns"])
    evaluate(reg, "iris", "sklearn:iris?split=test", latency=False)
    assert reg.get_reference(v.ref)[1] == "eval sklearn:iris"  # type: ignore[index]
    # an explicit reference replaces it
    reference_from_data(reg, v.ref, np.zeros((4, 4), dtype=np.float32), source="zeros")
    doc, source = reg.get_reference(v.ref)  # type: ignore[misc]
    assert (source, doc["rows"]) == ("zeros", 4)
