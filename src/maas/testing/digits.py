"""A tiny MNIST-shaped CNN trained on scikit-learn's digits, registered as a real version (needs torch).

The seed's Keras MNIST model, rebuilt in PyTorch: Conv2d(1, 32, 3) + ReLU + MaxPool2d(2) + Flatten +
Linear(32*13*13, 10), input NCHW [N, 1, 28, 28] in [0, 1] (the 8x8 digits ÷16, each pixel repeated 4x4 and
centre-cropped to 28x28: what `sklearn:digits` specs give), output logits [N, 10].
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from maas.types import Signature, TensorSpec

SIGNATURE = Signature(
    inputs=(TensorSpec("image", "FP32", (-1, 1, 28, 28)),), outputs=(TensorSpec("logits", "FP32", (-1, 10)),)
)
CONFIG = {"max_batch_size": 64, "labels": [str(i) for i in range(10)], "postprocess": [{"op": "softmax"}]}


def digits_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(x [N, 1, 28, 28] float32, y int64) for `train` or `test` (the fixed split of `sklearn:digits:…`)."""
    from maas.optimize.data import load_data

    ds = load_data(f"sklearn:digits:{split}", SIGNATURE)
    assert ds.y is not None
    return ds.x, ds.y


def digits_cnn(epochs: int = 4, seed: int = 0) -> Any:
    """The CNN above trained for a few seconds on the train split (about 97-98% on the test split)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 13 * 13, 10)
    )
    x, y = (torch.from_numpy(a) for a in digits_arrays("train"))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), 32):
            idx = order[i : i + 32]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def publish_digits_cnn(registry: Any, name: str = "digits", epochs: int = 4) -> Any:
    """Train, export and publish the CNN as the next version of `name`; returns the ModelVersion."""
    import torch

    from maas.optimize.torch_export import export_onnx

    net = digits_cnn(epochs)
    with tempfile.TemporaryDirectory(prefix="maas-digits-") as tmp:
        path = export_onnx(net, torch.zeros(1, 1, 28, 28), Path(tmp) / "model.onnx", "image", "logits")
        return registry.publish(
            name, {"model.onnx": path}, description="digits CNN (MNIST-shaped, 28x28)", signature=SIGNATURE,
            source_format="torch", config=CONFIG,
        )
