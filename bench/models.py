"""The two benchmark models, built in torch with fixed random weights and exported to ONNX with a dynamic batch.

(a) the seed's MNIST-style CNN: Conv2d(1->32, 3) + ReLU + MaxPool(2) + Flatten + Dense(10) + Softmax, input FP32
    [N, 28, 28, 1] (NHWC, like the Keras seed); (b) a ResNet-18-shaped network, input FP32 [N, 3, 224, 224].
torchvision is not used: the ResNet is written out here (BasicBlock x [2, 2, 2, 2], 1000 classes).
"""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn


class MnistCnn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 32, 3)
        self.pool = nn.MaxPool2d(2)
        self.dense = nn.Linear(32 * 13 * 13, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2)  # NHWC (Keras layout) -> NCHW
        x = self.pool(torch.relu(self.conv(x)))
        return torch.softmax(self.dense(torch.flatten(x, 1)), dim=1)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.down(x))


class ResNet18(nn.Module):
    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
        )
        layers, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(512, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def _export(model: nn.Module, example: torch.Tensor) -> bytes:
    model.eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(
            model, (example,), buf, input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=17, dynamo=False,
        )
    return buf.getvalue()


def build() -> dict[str, tuple[bytes, tuple[int, ...]]]:
    """name -> (ONNX bytes, per-row input shape)."""
    torch.manual_seed(0)
    return {
        "cnn": (_export(MnistCnn(), torch.rand(1, 28, 28, 1)), (28, 28, 1)),
        "resnet18": (_export(ResNet18(), torch.rand(1, 3, 224, 224)), (3, 224, 224)),
    }
