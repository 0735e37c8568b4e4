"""Keras 3 MLPs and CNNs (torch backend, never TensorFlow) built from the same layer list as the torch nets.

The fitted pre-processing becomes the model's first layers (Normalization for scaled features; Reshape,
UpSampling2D, Resizing, CenterCrop, Rescaling and Normalization for images), so the exported ONNX graph
takes the data set's raw features, exactly as the torch nets do. Images stay NHWC, Keras' own layout.
Imported only for the keras families; it sets KERAS_BACKEND before Keras is first imported."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from maas.errors import InvalidArgument
from maas.training.config import ImagePrep, ModelSpec, dense_units
from maas.training.torch_nets import SEED_CNN, SEED_MLP, FitResult

os.environ.setdefault("KERAS_BACKEND", "torch")

EpochCallback = Callable[[int, dict[str, float]], None]


def _keras() -> Any:
    from maas.formats.keras import _keras as checked

    return checked()  # refuses a process where Keras already runs on another backend


def _image_shape(image: ImagePrep | None, input_shape: tuple[int, ...]) -> ImagePrep:
    if image is not None and image.shape is not None:
        return image
    shape = input_shape if len(input_shape) == 3 else (*input_shape, 1) if len(input_shape) == 2 else None
    if shape is None:
        raise InvalidArgument("preprocessing.image.shape: needed to shape flat feature rows into images")
    return (image or ImagePrep()).model_copy(update={"shape": tuple(shape)})


def _prep_layers(
    keras: Any, image: ImagePrep | None, input_shape: tuple[int, ...], mean: Any, std: Any
) -> list[Any]:
    """The fitted pre-processing as Keras layers (the counterpart of torch_nets.Prep)."""
    L = keras.layers
    n_features = int(np.prod(input_shape))
    if image is None:
        out = [L.Flatten()] if len(input_shape) > 1 else []
        if mean is not None and std is not None:
            out.append(L.Normalization(mean=np.asarray(mean, np.float32), variance=np.square(std, dtype=np.float32)))
        return out
    h, w, c = image.shape  # type: ignore[misc]  # set by _image_shape
    if h * w * c != n_features:
        raise InvalidArgument(f"preprocessing.image.shape: {h}x{w}x{c} does not match the {n_features} features")
    out = [] if tuple(input_shape) == (h, w, c) else [L.Reshape((h, w, c))]
    if image.upsample and image.upsample > 1:
        out.append(L.UpSampling2D(size=image.upsample, interpolation="nearest"))
    if image.resize is not None:
        out.append(L.Resizing(*image.resize, interpolation="bilinear"))
    if image.center_crop is not None:
        out.append(L.CenterCrop(*image.center_crop))
    if image.scale is not None:
        out.append(L.Rescaling(image.scale))
    if image.normalize is not None:
        m, s = image.normalize.mean, image.normalize.std
        if len(m) not in (1, c) or len(s) not in (1, c):
            raise InvalidArgument(f"preprocessing.image.normalize: give 1 or {c} values")
        mean_c, std_c = np.resize(np.asarray(m, np.float32), c), np.resize(np.asarray(s, np.float32), c)
        out.append(L.Normalization(mean=mean_c, variance=np.square(std_c)))
    return out


def build(
    spec: ModelSpec, image: ImagePrep | None, input_shape: tuple[int, ...], n_out: int,
    mean: np.ndarray | None, std: np.ndarray | None, seed: int,
) -> Any:
    """A seeded keras.Sequential whose first layers apply the fitted pre-processing."""
    keras = _keras()
    L = keras.layers
    keras.utils.set_random_seed(seed)
    cnn = spec.family == "keras_cnn"
    layers = list(spec.layers or (SEED_CNN if cnn else SEED_MLP))
    image = _image_shape(image, input_shape) if cnn else None
    modules: list[Any] = [keras.Input(shape=tuple(input_shape))]
    modules += _prep_layers(keras, image, tuple(input_shape), mean, std)
    spatial = cnn
    last_dense = max(i for i, layer in enumerate(layers) if layer.type == "dense")
    for i, layer in enumerate(layers):
        act = layer.activation
        if act == "softmax" and i != len(layers) - 1:
            raise InvalidArgument(f"model.layers.{i}.activation: softmax only on the last layer")
        if layer.type == "conv2d":
            if not spatial:
                raise InvalidArgument(f"model.layers.{i}: conv2d after flatten")
            modules.append(L.Conv2D(layer.filters, layer.kernel, strides=layer.stride, padding=layer.padding,
                                    activation=act))
            continue
        if layer.type == "maxpool2d":
            modules.append(L.MaxPooling2D(layer.pool))
        elif layer.type == "dropout":
            modules.append(L.Dropout(layer.rate, seed=seed))
        elif layer.type == "batchnorm":
            modules.append(L.BatchNormalization())
        elif layer.type == "flatten":
            modules.append(L.Flatten())
            spatial = False
        elif layer.type == "dense":
            if spatial:
                modules.append(L.Flatten())
                spatial = False
            units = dense_units(layer, i, last_dense, n_out)
            modules.append(L.Dense(units, activation=act))
            continue
        if act != "linear":
            modules.append(L.Activation(act))
    try:
        return keras.Sequential(modules)
    except ValueError as exc:
        raise InvalidArgument(f"model.layers: do not fit the input shape: {str(exc).splitlines()[0]}") from None


def _optimizer(keras: Any, spec: ModelSpec, over: dict[str, Any]) -> Any:
    """Keras' weight_decay is decoupled (AdamW-style) for every optimizer, unlike torch's Adam and SGD."""
    o, opt = spec.optimizer, keras.optimizers
    lr, wd = float(over.get("lr", o.lr)), float(over.get("weight_decay", o.weight_decay)) or None
    momentum = float(over.get("momentum", o.momentum))
    if o.name == "adam":
        return opt.Adam(learning_rate=lr, weight_decay=wd)
    if o.name == "adamw":
        return opt.AdamW(learning_rate=lr, weight_decay=wd or 0.004)
    if o.name == "rmsprop":
        return opt.RMSprop(learning_rate=lr, weight_decay=wd, momentum=momentum)
    return opt.SGD(learning_rate=lr, weight_decay=wd, momentum=momentum)


def _loss(keras: Any, spec: ModelSpec, task: str, softmax_out: bool) -> Any:
    name = spec.loss or ("cross_entropy" if task == "classification" else "mse")
    if name == "cross_entropy":
        if task != "classification":
            raise InvalidArgument("model.loss: cross_entropy needs a classification target")
        return keras.losses.SparseCategoricalCrossentropy(from_logits=not softmax_out)
    if task == "classification":
        raise InvalidArgument(f"model.loss: {name} needs a regression target")
    return keras.losses.MeanSquaredError() if name == "mse" else keras.losses.MeanAbsoluteError()


def _monitor(keras: Any, spec: ModelSpec, has_val: bool, on_epoch: EpochCallback | None, result: FitResult) -> Any:
    """Records each epoch, reports it, and stops early on the validation loss keeping the best weights
    (the same rule as torch_nets.fit, so the two families choose epochs alike)."""
    es = spec.early_stopping if has_val else None

    class Monitor(keras.callbacks.Callback):  # type: ignore[misc,name-defined]
        def on_train_begin(self, logs: Any = None) -> None:
            self.best, self.waited, self.best_weights = float("inf"), 0, None

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            logs = logs or {}
            record = {"loss": float(logs["loss"])}
            if has_val:
                record["val_loss"] = float(logs["val_loss"])
                if "val_accuracy" in logs:
                    record["val_accuracy"] = float(logs["val_accuracy"])
            result.history.append(record)
            result.epochs_run = epoch + 1
            if on_epoch is not None:
                on_epoch(epoch + 1, record)
            if es is None:
                return
            if record["val_loss"] < self.best - es.min_delta:
                self.best, self.waited, result.best_epoch = record["val_loss"], 0, epoch + 1
                self.best_weights = self.model.get_weights()
            else:
                self.waited += 1
                if self.waited >= es.patience:
                    self.model.stop_training = True

        def on_train_end(self, logs: Any = None) -> None:
            if es is not None and self.best_weights is not None:
                self.model.set_weights(self.best_weights)
            else:
                result.best_epoch = result.epochs_run

    return Monitor()


def fit(
    net: Any, spec: ModelSpec, task: str, x: np.ndarray, y: np.ndarray, *, seed: int,
    x_val: np.ndarray | None = None, y_val: np.ndarray | None = None, over: dict[str, Any] | None = None,
    epochs: int | None = None, on_epoch: EpochCallback | None = None,
) -> FitResult:
    """model.fit with a seeded shuffle; early stopping as in torch_nets.fit."""
    keras = _keras()
    over = over or {}
    n_epochs = int(epochs or over.get("epochs", spec.epochs))
    keras.utils.set_random_seed(seed)
    softmax_out = net.layers[-1].get_config().get("activation") == "softmax"
    metrics = ["accuracy"] if task == "classification" else []
    net.compile(optimizer=_optimizer(keras, spec, over), loss=_loss(keras, spec, task, softmax_out), metrics=metrics)
    has_val = x_val is not None and y_val is not None and len(x_val) > 0
    ytype = np.int64 if task == "classification" else np.float32
    val = (np.asarray(x_val, np.float32), np.asarray(y_val, ytype)) if has_val else None
    result = FitResult(0, n_epochs)
    net.fit(
        np.asarray(x, np.float32), np.asarray(y, ytype), batch_size=int(over.get("batch_size", spec.batch_size)),
        epochs=n_epochs, validation_data=val, shuffle=True, verbose=0,
        callbacks=[_monitor(keras, spec, has_val, on_epoch, result)],
    )
    return result


def predict(net: Any, x: np.ndarray, batch: int = 512) -> np.ndarray:
    """The network's served output as float32."""
    return np.asarray(net.predict(np.asarray(x, np.float32), batch_size=batch, verbose=0), dtype=np.float32)
