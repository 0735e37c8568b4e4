"""PyTorch MLPs and CNNs built from the config's layer list and trained with early stopping.

The fitted pre-processing (feature scaling, pixel reshaping/upsampling/cropping/scaling) is folded into the
network as its first module, so the exported ONNX graph takes the data set's raw features and serving
applies exactly what training did. Images arrive NHWC (the layout `decode_image` produces) and are turned
into NCHW inside the graph. Imports torch at import time: the pipeline imports this module only for nets."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from maas.errors import InvalidArgument
from maas.training.config import ImagePrep, Layer, ModelSpec, dense_units

EpochCallback = Callable[[int, dict[str, float]], None]
SEED_CNN = [
    Layer(type="conv2d", filters=32, kernel=3, activation="relu"),
    Layer(type="maxpool2d", pool=2),
    Layer(type="flatten"),
    Layer(type="dense", activation="softmax"),
]
SEED_MLP = [Layer(type="dense", units=64, activation="relu"), Layer(type="dense", activation="softmax")]


def _activation(nn: Any, name: str) -> Any:
    return {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}[name]()


def build(
    spec: ModelSpec, image: ImagePrep | None, input_shape: tuple[int, ...], n_out: int,
    mean: np.ndarray | None, std: np.ndarray | None, seed: int,
) -> Any:
    """A seeded network whose first module applies the fitted pre-processing."""
    nn = torch.nn
    torch.manual_seed(seed)
    cnn = spec.family == "torch_cnn"
    layers = list(spec.layers or (SEED_CNN if cnn else SEED_MLP))
    softmax_out = layers[-1].type == "dense" and layers[-1].activation == "softmax"
    if cnn and (image is None or image.shape is None):
        shape = input_shape if len(input_shape) == 3 else (*input_shape, 1) if len(input_shape) == 2 else None
        if shape is None:
            raise InvalidArgument("preprocessing.image.shape: needed to shape flat feature rows into images")
        image = (image or ImagePrep()).model_copy(update={"shape": tuple(shape)})
    if not cnn:
        image = None

    modules: list[Any] = [] if cnn else [nn.Flatten()]
    spatial = cnn
    last_dense = max(i for i, layer in enumerate(layers) if layer.type == "dense")
    for i, layer in enumerate(layers):
        if layer.type == "conv2d":
            if not spatial:
                raise InvalidArgument(f"model.layers.{i}: conv2d after flatten")
            modules.append(
                # filters and kernel are set for conv2d (config.Layer checks it)
                nn.LazyConv2d(layer.filters, layer.kernel, stride=layer.stride, padding=layer.padding)  # type: ignore[arg-type]
            )
        elif layer.type == "maxpool2d":
            modules.append(nn.MaxPool2d(layer.pool))
        elif layer.type == "dropout":
            modules.append(nn.Dropout(layer.rate))  # type: ignore[arg-type]  # set for dropout (config.Layer)
        elif layer.type == "batchnorm":
            modules.append(nn.LazyBatchNorm2d() if spatial else nn.LazyBatchNorm1d())
        elif layer.type == "flatten":
            modules.append(nn.Flatten())
            spatial = False
        elif layer.type == "dense":
            if spatial:
                modules.append(nn.Flatten())
                spatial = False
            units = dense_units(layer, i, last_dense, n_out)
            modules.append(nn.LazyLinear(units))
        if layer.activation not in ("linear", "softmax"):
            modules.append(_activation(nn, layer.activation))
        elif layer.activation == "softmax" and i != len(layers) - 1:
            raise InvalidArgument(f"model.layers.{i}.activation: softmax only on the last layer")
    net = Net(Prep(input_shape, image, mean, std), nn.Sequential(*modules), softmax_out)
    with torch.no_grad():  # materialize the lazy layers with the seeded generator
        net.eval()
        try:
            net(torch.zeros(2, *net.prep.input_shape))
        except RuntimeError as exc:
            raise InvalidArgument(f"model.layers: do not fit the input shape: {str(exc).splitlines()[0]}") from None
    return net


class Prep(torch.nn.Module):
    """Fitted feature scaling or image shaping, as a graph that ONNX export keeps."""

    def __init__(self, input_shape: tuple[int, ...], image: ImagePrep | None, mean: Any, std: Any) -> None:
        super().__init__()
        self.image = image
        self.input_shape = tuple(input_shape)
        n_features = int(np.prod(input_shape))
        if image is not None and image.shape is not None:
            h, w, c = image.shape
            if h * w * c != n_features:
                raise InvalidArgument(
                    f"preprocessing.image.shape: {h}x{w}x{c} does not match the {n_features} features"
                )
        self.register_buffer("mean", torch.as_tensor(mean if mean is not None else 0.0, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std if std is not None else 1.0, dtype=torch.float32))
        if image is not None and image.normalize is not None:
            c = image.shape[2] if image.shape else 1
            m, s = image.normalize.mean, image.normalize.std
            if len(m) not in (1, c) or len(s) not in (1, c):
                raise InvalidArgument(f"preprocessing.image.normalize: give 1 or {c} values")
            self.register_buffer("img_mean", torch.tensor(m, dtype=torch.float32).reshape(1, -1, 1, 1))
            self.register_buffer("img_std", torch.tensor(s, dtype=torch.float32).reshape(1, -1, 1, 1))

    def forward(self, x: Any) -> Any:
        import torch.nn.functional as F

        if self.image is None:
            return (x.reshape(x.shape[0], -1) - self.mean) / self.std
        img = self.image
        h, w, c = img.shape  # type: ignore[misc]  # always set for image inputs (config checks it)
        x = x.reshape(-1, h, w, c).permute(0, 3, 1, 2)
        if img.upsample and img.upsample > 1:
            x = x.repeat_interleave(img.upsample, dim=2).repeat_interleave(img.upsample, dim=3)
        if img.resize is not None:
            x = F.interpolate(x, size=tuple(img.resize), mode="bilinear", align_corners=False)
        if img.center_crop is not None:
            ch, cw = img.center_crop
            top, left = (x.shape[2] - ch) // 2, (x.shape[3] - cw) // 2
            x = x[:, :, top : top + ch, left : left + cw]
        if img.scale is not None:
            x = x * img.scale
        if img.normalize is not None:
            x = (x - self.img_mean) / self.img_std
        return x


class Net(torch.nn.Module):
    """Pre-processing, the declared layers, and a final softmax kept out of the training loss."""

    def __init__(self, prep: Any, body: Any, softmax_out: bool) -> None:
        super().__init__()
        self.prep, self.body, self.softmax_out = prep, body, softmax_out

    def logits(self, x: Any) -> Any:
        return self.body(self.prep(x))

    def forward(self, x: Any) -> Any:
        out = self.logits(x)
        return out.softmax(-1) if self.softmax_out else out


@dataclass
class FitResult:
    epochs_run: int
    best_epoch: int  # 1-based epoch whose weights were kept (the last one without early stopping)
    history: list[dict[str, float]] = field(default_factory=list)


def _optimizer(torch: Any, spec: ModelSpec, params: Any, over: dict[str, Any]) -> Any:
    o = spec.optimizer
    lr, wd = float(over.get("lr", o.lr)), float(over.get("weight_decay", o.weight_decay))
    momentum = float(over.get("momentum", o.momentum))
    if o.name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if o.name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if o.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=wd, momentum=momentum)
    return torch.optim.SGD(params, lr=lr, weight_decay=wd, momentum=momentum)


def _loss(torch: Any, spec: ModelSpec, task: str) -> Callable[[Any, Any], Any]:
    nn = torch.nn
    name = spec.loss or ("cross_entropy" if task == "classification" else "mse")
    if name == "cross_entropy":
        if task != "classification":
            raise InvalidArgument("model.loss: cross_entropy needs a classification target")
        return nn.CrossEntropyLoss()
    if task == "classification":
        raise InvalidArgument(f"model.loss: {name} needs a regression target")
    base = nn.MSELoss() if name == "mse" else nn.L1Loss()
    return lambda out, y: base(out.reshape(-1), y)


def fit(
    net: Any, spec: ModelSpec, task: str, x: np.ndarray, y: np.ndarray, *, seed: int,
    x_val: np.ndarray | None = None, y_val: np.ndarray | None = None, over: dict[str, Any] | None = None,
    epochs: int | None = None, on_epoch: EpochCallback | None = None,
) -> FitResult:
    """Mini-batch training with a seeded shuffle; with validation data and `early_stopping`, training stops
    after `patience` epochs without improvement and the best weights are restored."""
    over = over or {}
    n_epochs = int(epochs or over.get("epochs", spec.epochs))
    batch = int(over.get("batch_size", spec.batch_size))
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout masks
    opt = _optimizer(torch, spec, net.parameters(), over)
    loss_fn = _loss(torch, spec, task)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.from_numpy(y.astype(np.int64 if task == "classification" else np.float32))
    has_val = x_val is not None and y_val is not None and len(x_val) > 0
    es = spec.early_stopping if has_val else None
    if has_val:
        xv = torch.from_numpy(np.ascontiguousarray(x_val, dtype=np.float32))
        assert y_val is not None  # has_val
        yv = torch.from_numpy(y_val.astype(np.int64 if task == "classification" else np.float32))
    best, best_epoch, best_state, waited = float("inf"), n_epochs, None, 0
    result = FitResult(0, n_epochs)
    for epoch in range(1, n_epochs + 1):
        net.train()
        order = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for start in range(0, len(xt), batch):
            idx = order[start : start + batch]
            opt.zero_grad()
            loss = loss_fn(net.logits(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        record = {"loss": total / len(xt)}
        if has_val:
            net.eval()
            with torch.no_grad():
                out = net.logits(xv)
                record["val_loss"] = float(loss_fn(out, yv))
                if task == "classification":
                    record["val_accuracy"] = float((out.argmax(-1) == yv).float().mean())
        result.history.append(record)
        result.epochs_run = epoch
        if on_epoch is not None:
            on_epoch(epoch, record)
        if es is not None:
            if record["val_loss"] < best - es.min_delta:
                best, best_epoch, waited = record["val_loss"], epoch, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                waited += 1
                if waited >= es.patience:
                    break
    if es is not None and best_state is not None:
        net.load_state_dict(best_state)
        result.best_epoch = best_epoch
    else:
        result.best_epoch = result.epochs_run
    net.eval()
    return result


def predict(net: Any, x: np.ndarray, batch: int = 512) -> np.ndarray:
    """The network's served output (probabilities for a softmax head) as float32."""
    net.eval()
    outs = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            outs.append(net(torch.from_numpy(np.ascontiguousarray(x[start : start + batch], dtype=np.float32))))
    return torch.cat(outs).numpy()
