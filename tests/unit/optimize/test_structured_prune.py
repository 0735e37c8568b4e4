"""Structured pruning of a version registered with its PyTorch source: really fewer parameters, a valid ONNX
child with a dynamic batch and its own `.pt2`, accuracy kept by a short fine-tune; refusals publish nothing."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest

from maas.errors import FailedPrecondition, InvalidArgument
from maas.formats import ImportOptions, register
from maas.optimize import optimize
from maas.optimize.measure import session
from maas.registry import ModelVersion, Registry
from maas.testing.digits import digits_arrays

from .optimize_support import TEST_DATA, count_versions


def _small_cnn() -> Any:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 5 * 5, 10),
    )
    x, y = (torch.from_numpy(a) for a in digits_arrays("train"))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for _ in range(3):
        for i in range(0, len(x), 32):
            loss = F.cross_entropy(net(x[i : i + 32]), y[i : i + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


@pytest.fixture(scope="module")
def cnn(reg: Registry) -> ModelVersion:
    import torch

    return register(reg, _small_cnn(), name="cnn", options=ImportOptions(sample_input=torch.zeros(4, 1, 28, 28)))


def test_half_the_channels_fewer_parameters_same_accuracy(reg: Registry, cnn: ModelVersion) -> None:
    assert {a.role for a in cnn.artifacts} == {"model.onnx", "source.pt2"}  # a live module keeps its source
    result = optimize(reg, cnn.ref, prune=0.5, structured=True, fine_tune=2, fine_tune_data="sklearn:digits:train",
                      data=TEST_DATA)
    child, report = result.version, result.report
    details = report["details"]
    assert child.lineage.transform == "prune" and child.lineage.parent == cnn.version
    assert child.lineage.params == {"sparsity": 0.5, "structured": True, "fine_tune_epochs": 2,
                                    "fine_tune_data": "sklearn:digits:train"}
    assert details["channels"] == {"conv2d": [8, 4], "conv2d_1": [16, 8]}
    assert details["parameters_after"] < 0.6 * details["parameters_before"]
    assert report["comparison"]["size_ratio"] < 0.6  # smaller tensors, not zeros
    assert details["parity_vs_torch"]["max_abs_diff"] <= 1e-4
    assert report["comparison"]["accuracy_drop"] <= 0.03 and report["parent"]["accuracy"] > 0.9
    assert report["child"]["latency_p50_ms_b1"] > 0  # measured and reported, never asserted faster
    path = reg.artifact_path(child)
    onnx.checker.check_model(onnx.load(str(path)))
    sess = session(path)
    x = np.zeros((3, 1, 28, 28), np.float32)
    assert sess.run(None, {"input": x})[0].shape == (3, 10)  # dynamic batch, the parent's signature
    assert child.signature == cnn.signature and "source.pt2" in {a.role for a in child.artifacts}
    again = optimize(reg, child.ref, prune=0.5, structured=True, timing=False)  # its own source prunes again
    assert again.report["details"]["channels"] == {"conv2d": [4, 2], "conv2d_1": [8, 4]}


def test_refusals_publish_nothing(reg: Registry, cnn: ModelVersion, teacher: ModelVersion) -> None:
    before = count_versions(reg, "cnn"), count_versions(reg, "digits")
    with pytest.raises(FailedPrecondition, match="needs a PyTorch source: digits:1 stores no source.pt2"):
        optimize(reg, "digits:1", prune=0.5, structured=True)
    with pytest.raises(InvalidArgument, match="sparsity"):
        optimize(reg, cnn.ref, prune=1.0, structured=True)
    with pytest.raises(InvalidArgument, match="structured pruning only"):
        optimize(reg, cnn.ref, prune=0.5, fine_tune=1)
    with pytest.raises(InvalidArgument, match="needs labelled data"):
        optimize(reg, cnn.ref, prune=0.5, structured=True, fine_tune=1)
    assert (count_versions(reg, "cnn"), count_versions(reg, "digits")) == before
