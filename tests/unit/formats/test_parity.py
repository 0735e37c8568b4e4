"""Parity: sample generation from a signature and the comparison report."""

from __future__ import annotations

import numpy as np
import pytest

from maas.errors import InvalidArgument
from maas.formats import parity
from maas.types import Signature, TensorSpec

SIG = Signature(
    (TensorSpec("x", "FP32", (-1, 3, -1)), TensorSpec("ids", "INT64", (-1, 2))),
    (TensorSpec("y", "FP32", (-1,)),),
)


def test_generate_follows_the_signature():
    s = parity.generate(SIG)
    assert s["x"].shape == (parity.SAMPLE_ROWS, 3, parity.DYNAMIC_DIM) and s["x"].dtype == np.float32
    assert s["ids"].dtype == np.int64 and s["ids"].min() >= 0 and s["ids"].max() < 5


def test_as_inputs_checks_count_and_shape():
    with pytest.raises(InvalidArgument, match="2 inputs"):
        parity.as_inputs(np.zeros((2, 3, 4)), SIG)
    with pytest.raises(InvalidArgument, match="shape"):
        parity.as_inputs({"x": np.zeros((2, 4, 4)), "ids": np.zeros((2, 2))}, SIG)
    got = parity.as_inputs([np.zeros((2, 3, 4)), np.zeros((2, 2))], SIG)
    assert got["ids"].dtype == np.int64


def test_compare_reports_errors_and_exact_labels():
    ref = [np.array([1, 2, 3]), np.array([[0.5, 0.5]], np.float32)]
    ok = parity.compare(
        ref,
        [np.array([1, 2, 3]), np.array([[0.50001, 0.5]], np.float32)],
        ["l", "p"],
        [parity.OutputRule(exact=True), parity.OutputRule()],
        samples=1,
    )
    assert ok["passed"] and 0 < ok["max_abs_err"] < 1e-4
    bad = parity.compare(
        ref,
        [np.array([1, 2, 4]), np.array([[0.6, 0.5]], np.float32)],
        ["l", "p"],
        [parity.OutputRule(exact=True), parity.OutputRule()],
        samples=1,
    )
    assert not bad["passed"] and bad["outputs"][0]["mismatches"] == 1
    assert "l: 1 of the values differ" in parity.describe_failure(bad)
