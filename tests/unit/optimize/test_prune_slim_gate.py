"""Pruning reports what it achieves (sparsity, compressed size, measured speed); slimming keeps parity; the
accuracy gate refuses a child that loses too much and says by how much it missed."""

from __future__ import annotations

import pytest

from maas.errors import FailedPrecondition, InvalidArgument
from maas.optimize import optimize
from maas.registry import ModelVersion, Registry

from .optimize_support import TEST_DATA, count_versions


def test_prune_reaches_the_target_sparsity_and_compresses(reg: Registry, teacher: ModelVersion) -> None:
    result = optimize(reg, "digits:1", prune=0.5, data=TEST_DATA)
    child, report = result.version, result.report
    assert child.lineage.parent == 1 and child.lineage.transform == "prune"
    assert child.lineage.params == {"sparsity": 0.5, "structured": False}
    assert report["details"]["achieved_sparsity"] == pytest.approx(0.5, abs=0.01)
    assert report["comparison"]["size_ratio"] == pytest.approx(1.0, abs=0.01)  # dense storage: no smaller
    assert report["comparison"]["gzip_ratio"] < 0.8
    assert "speedup_b1" in report["comparison"] and "no speed-up" in report["details"]["note"]
    assert report["comparison"]["accuracy_drop"] <= 0.05


def test_prune_refuses_bad_parameters(reg: Registry, teacher: ModelVersion) -> None:
    before = count_versions(reg)
    with pytest.raises(FailedPrecondition, match="structured pruning needs a PyTorch source"):
        optimize(reg, "digits:1", prune=0.5, structured=True)
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(InvalidArgument, match="sparsity"):
            optimize(reg, "digits:1", prune=bad)
    assert count_versions(reg) == before


def test_slim_keeps_parity(reg: Registry, teacher: ModelVersion) -> None:
    result = optimize(reg, "digits:1", slim=True, timing=False)
    assert result.version.lineage.transform == "slim" and result.version.lineage.params == {}
    details = result.report["details"]
    assert details["parity"]["max_abs_diff"] <= 1e-4 and details["parity"]["top1_agreement"] == 1.0
    assert details["nodes_after"] <= details["nodes_before"]


def test_gate_refuses_a_child_that_loses_too_much(reg: Registry, teacher: ModelVersion) -> None:
    before = count_versions(reg)
    with pytest.raises(FailedPrecondition, match=r"accuracy dropped by 0\.\d{4} .*missed by 0\.\d{4}") as err:
        optimize(reg, "digits:1", prune=0.97, data=TEST_DATA, max_accuracy_drop=0.01, timing=False)
    assert "no version was created" in err.value.message
    assert count_versions(reg) == before


def test_gate_lets_a_good_child_through(reg: Registry, teacher: ModelVersion) -> None:
    result = optimize(reg, "digits:1", quantize="fp16", data=TEST_DATA, max_accuracy_drop=0.01, timing=False)
    assert result.report["comparison"]["accuracy_drop"] <= 0.01


def test_gate_needs_labelled_data(reg: Registry, teacher: ModelVersion) -> None:
    with pytest.raises(InvalidArgument, match="needs labelled --data"):
        optimize(reg, "digits:1", quantize="fp16", max_accuracy_drop=0.01)
