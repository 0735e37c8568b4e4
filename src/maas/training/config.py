"""The training config (YAML): validated up front so that a bad field fails before any data is read or any
model is fitted, with a message naming the field (`model.family: unknown family 'foo'`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from maas.errors import InvalidArgument
from maas.training.families import CNN_FAMILIES, NET_FAMILIES, SKLEARN_FAMILIES, check_sklearn_params

Activation = Literal["relu", "tanh", "sigmoid", "gelu", "softmax", "linear"]
CLASSIFICATION_METRICS = frozenset({"accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "roc_auc", "log_loss"})
REGRESSION_METRICS = frozenset({"r2", "mae", "rmse", "mse"})
# Net training settings a search may tune (a net's layers are structure, not searched here).
NET_SEARCHABLE = frozenset({"lr", "weight_decay", "momentum", "batch_size", "epochs"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Split(_Strict):
    validation: float = Field(0.2, ge=0.0, lt=1.0)
    test: float = Field(0.2, gt=0.0, lt=1.0)
    stratify: bool = True

    @model_validator(mode="after")
    def _leaves_training_data(self) -> Split:
        if self.validation + self.test >= 0.9:
            raise ValueError("validation + test must leave at least 10% of the data for training")
        return self


class Data(_Strict):
    source: str = Field(min_length=1)
    target: str | None = None
    split: Split = Split()


class Normalize(_Strict):
    mean: list[float] = Field(min_length=1, max_length=4)
    std: list[Annotated[float, Field(gt=0)]] = Field(min_length=1, max_length=4)


class Decode(_Strict):
    """How an image folder's PNG/JPEG files become pixels: Pillow colour mode and (height, width). The same
    steps (decode_image, resize) go into the registered version, so a client may send the encoded file."""

    mode: Literal["L", "RGB"] = "RGB"
    size: tuple[Annotated[int, Field(gt=0, le=4096)], Annotated[int, Field(gt=0, le=4096)]]


class ImagePrep(_Strict):
    """How raw pixels become the net's input, folded into the exported network (so serving does the same).

    Order: (`decode` image files, outside the graph) reshape flat rows to `shape` (H, W, C), repeat each pixel
    `upsample`×, `resize`, `center_crop`, multiply by `scale`, then `normalize` per channel."""

    decode: Decode | None = None
    shape: tuple[int, int, int] | None = None
    upsample: int | None = Field(None, ge=1, le=16)
    resize: tuple[int, int] | None = None
    center_crop: tuple[int, int] | None = None
    scale: float | None = None
    normalize: Normalize | None = None


class Preprocessing(_Strict):
    tabular: Literal["standardize", "minmax", "none"] = "standardize"
    image: ImagePrep | None = None
    label_encoding: bool = True


class Layer(_Strict):
    type: Literal["conv2d", "maxpool2d", "dropout", "flatten", "dense", "batchnorm"]
    filters: int | None = Field(None, ge=1, le=4096)
    kernel: int | tuple[int, int] | None = None
    stride: int = Field(1, ge=1)
    padding: Literal["valid", "same"] = "valid"
    pool: int | tuple[int, int] = 2
    rate: float | None = Field(None, ge=0.0, lt=1.0)
    units: int | None = Field(None, ge=1, le=65536)
    activation: Activation = "linear"

    @model_validator(mode="after")
    def _needs(self) -> Layer:
        if self.type == "conv2d" and (self.filters is None or self.kernel is None):
            raise ValueError("conv2d needs filters and kernel")
        if self.type == "dropout" and self.rate is None:
            raise ValueError("dropout needs rate")
        return self


class Optimizer(_Strict):
    name: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.0, ge=0, lt=1)


class EarlyStopping(_Strict):
    patience: int = Field(3, ge=1)
    min_delta: float = Field(0.0, ge=0)


class ModelSpec(_Strict):
    family: str
    params: dict[str, Any] = Field(default_factory=dict)  # scikit-learn constructor arguments
    layers: list[Layer] | None = None  # nets; the last dense may omit units (= classes, or 1 for regression)
    optimizer: Optimizer = Optimizer()
    loss: Literal["cross_entropy", "mse", "mae"] | None = None
    epochs: int = Field(10, ge=1, le=10_000)
    batch_size: int = Field(32, ge=1, le=65536)
    early_stopping: EarlyStopping | None = None

    @field_validator("family")
    @classmethod
    def _known_family(cls, v: str) -> str:
        if v not in SKLEARN_FAMILIES and v not in NET_FAMILIES:
            raise ValueError(
                f"unknown family {v!r}; expected one of {sorted(SKLEARN_FAMILIES) + sorted(NET_FAMILIES)}"
            )
        return v

    @model_validator(mode="after")
    def _params_fit_family(self) -> ModelSpec:
        if self.family in SKLEARN_FAMILIES:
            if self.layers is not None:
                raise ValueError(f"layers apply to nets, not to {self.family}")
            check_sklearn_params(self.family, self.params)
        else:
            if self.params:
                raise ValueError(f"{self.family} takes layers, optimizer, epochs…, not params")
            if self.layers is not None and not any(layer.type == "dense" for layer in self.layers):
                raise ValueError("a net needs a final dense layer")
        return self

    @property
    def is_net(self) -> bool:
        return self.family in NET_FAMILIES


class Dimension(_Strict):
    type: Literal["int", "float", "loguniform", "categorical"]
    low: float | None = None
    high: float | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Dimension:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("categorical needs a non-empty list of choices")
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"{self.type} needs low and high")
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.type == "loguniform" and self.low <= 0:
            raise ValueError("loguniform needs low > 0")
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError("int bounds must be integers")
        return self


class Search(_Strict):
    trials: int = Field(10, ge=1, le=10_000)
    timeout_s: float | None = Field(None, gt=0)
    space: dict[str, Dimension] = Field(min_length=1)
    objective: Literal["cv", "validation"] = "cv"
    k: int = Field(5, ge=2, le=50)
    metric: str | None = None  # default: accuracy for classification, r2 for regression
    pruner: Literal["median", "none"] = "median"

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str | None) -> str | None:
        if v is not None and v not in CLASSIFICATION_METRICS | REGRESSION_METRICS:
            known = sorted(CLASSIFICATION_METRICS | REGRESSION_METRICS)
            raise ValueError(f"unknown metric {v!r}; expected one of {known}")
        return v


class Register(_Strict):
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    aliases: list[str] = Field(default_factory=list)


class TrainConfig(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str | None = None
    seed: int = Field(0, ge=0, le=2**32 - 1)
    data: Data
    preprocessing: Preprocessing = Preprocessing()
    model: ModelSpec
    search: Search | None = None
    # `register` would shadow BaseModel.register (ABCMeta); the YAML key stays `register`.
    registration: Register = Field(Register(), alias="register")

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.search is not None:
            for key in self.search.space:
                if self.model.is_net:
                    if key not in NET_SEARCHABLE:
                        raise ValueError(
                            f"search.space.{key}: {self.model.family} can search {sorted(NET_SEARCHABLE)}"
                        )
                else:
                    check_sklearn_params(self.model.family, {key: None}, where=f"search.space.{key}")
            if self.search.objective == "validation" and self.data.split.validation == 0:
                raise ValueError("search.objective: 'validation' needs data.split.validation > 0")
        if self.model.early_stopping is not None and self.data.split.validation == 0:
            raise ValueError("model.early_stopping: needs data.split.validation > 0")
        if self.preprocessing.image is not None and self.model.family not in CNN_FAMILIES:
            raise ValueError("preprocessing.image: applies to the cnn families only")
        return self


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc if not (isinstance(p, str) and p.startswith(("function-", "tagged-"))))


def parse(data: Any) -> TrainConfig:
    """Validate a config mapping; InvalidArgument names the first bad field."""
    if not isinstance(data, dict):
        raise InvalidArgument("a training config must be a mapping")
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _where(first["loc"])
        msg = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            msg = "unknown field"
        head = msg.split(" ", 1)[0]
        if head.endswith(":") and "." in head:  # a check that names its own field
            raise InvalidArgument(msg) from None
        raise InvalidArgument(f"{where or 'config'}: {msg}") from None


def load(path: str | os.PathLike[str]) -> TrainConfig:
    """Read and validate a YAML config; a relative `data.source` path is taken relative to the file."""
    import yaml

    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidArgument(f"cannot read {p}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise InvalidArgument(f"{p.name} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if isinstance(raw, dict) and isinstance(raw.get("data"), dict):
        src = raw["data"].get("source")
        if isinstance(src, str) and ":" not in src.split("/")[0] and not Path(src).is_absolute():
            raw = {**raw, "data": {**raw["data"], "source": str((p.parent / src).resolve())}}
    return parse(raw)


def dense_units(layer: Layer, index: int, last_dense: int, n_out: int) -> int:
    """A dense layer's width: as given, or the data's output count for the last one (which must match it)."""
    units = layer.units or (n_out if index == last_dense else None)
    if units is None:
        raise InvalidArgument(f"model.layers.{index}: dense needs units")
    if index == last_dense and units != n_out:
        raise InvalidArgument(f"model.layers.{index}.units: the data has {n_out} outputs, not {units}")
    return units
