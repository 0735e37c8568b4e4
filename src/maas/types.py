"""Core values shared by every layer: V2 datatypes, tensor specs, signatures and model references."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from maas.errors import InvalidArgument
from maas.numbers import is_ascii_int

# KServe v2 datatype <-> numpy dtype. BYTES tensors are numpy object arrays of `bytes`.
_V2_TO_NUMPY: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(np.object_),
}
_NUMPY_TO_V2 = {dt: name for name, dt in _V2_TO_NUMPY.items()}
DATATYPES = frozenset([*_V2_TO_NUMPY, "BF16"])

# ONNX TensorProto element type -> V2 datatype (onnx.TensorProto enum values, kept numeric to stay import-light).
ONNX_TO_V2 = {
    1: "FP32", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64", 8: "BYTES",
    9: "BOOL", 10: "FP16", 11: "FP64", 12: "UINT32", 13: "UINT64", 16: "BF16",
}


def numpy_dtype(datatype: str) -> np.dtype[Any]:
    """The numpy dtype of a V2 datatype; InvalidArgument for unknown or unsupported ones."""
    try:
        return _V2_TO_NUMPY[datatype]
    except KeyError:
        if datatype == "BF16":
            raise InvalidArgument("datatype BF16 is not supported by this server") from None
        raise InvalidArgument(f"unknown datatype {datatype!r}") from None


def v2_datatype(dtype: np.dtype[Any]) -> str:
    """The V2 datatype name of a numpy dtype (strings and bytes map to BYTES)."""
    dtype = np.dtype(dtype)
    if dtype.kind in ("S", "U", "O"):
        return "BYTES"
    try:
        return _NUMPY_TO_V2[dtype.newbyteorder("=")]
    except KeyError:
        raise InvalidArgument(f"numpy dtype {dtype} has no V2 datatype") from None


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: name, V2 datatype, shape with -1 for a dynamic dimension."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TensorSpec:
        return cls(str(d["name"]), str(d["datatype"]), tuple(int(x) for x in d["shape"]))


@dataclass(frozen=True)
class Signature:
    """Inputs and outputs of a model; `batch_axis` is True when dimension 0 is the batch."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    batch_axis: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "batch_axis": self.batch_axis,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Signature:
        return cls(
            tuple(TensorSpec.from_dict(t) for t in d.get("inputs", [])),
            tuple(TensorSpec.from_dict(t) for t in d.get("outputs", [])),
            bool(d.get("batch_axis", True)),
        )

    def input(self, name: str) -> TensorSpec:
        for t in self.inputs:
            if t.name == name:
                return t
        raise InvalidArgument(f"unknown input {name!r}; expected one of {[t.name for t in self.inputs]}")


# --- names and references -------------------------------------------------------------------------------

# Always applied with fullmatch: `$` also matches before a trailing newline, which let "mlp\n" be a name.
NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
ALIAS_RE = NAME_RE
TAG_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}")


def check_name(name: str, what: str = "model name") -> str:
    """Validate a model name (also used for aliases): lowercase, 1-63 chars, no '..', no separators."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or ".." in name:
        shown = name if isinstance(name, str) and len(name) <= 80 else f"{str(name)[:80]}…"
        raise InvalidArgument(
            f"invalid {what} {shown!r}: use 1-63 characters a-z, 0-9, '.', '_', '-', starting with a letter "
            "or digit, without '..'"
        )
    return name


def check_alias(alias: str) -> str:
    check_name(alias, "alias")
    if alias.isdigit():  # also '²': refused as a name anyway, but never read as a version
        raise InvalidArgument(f"invalid alias {alias!r}: an alias cannot be a number")
    return alias


def check_tags(tags: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in tags.items():
        if not isinstance(k, str) or not TAG_KEY_RE.fullmatch(k):
            raise InvalidArgument(f"invalid tag key {str(k)[:80]!r}")
        if not isinstance(v, str) or len(v) > 1024:
            raise InvalidArgument(f"invalid value for tag {k!r}: a string of at most 1024 characters")
        out[k] = v
    return out


def parse_tag(text: str) -> tuple[str, str]:
    """'k=v' -> (k, v); used by the CLI and the control API."""
    key, sep, value = text.partition("=")
    if not sep:
        raise InvalidArgument(f"invalid tag {text[:80]!r}: expected KEY=VALUE")
    check_tags({key: value})
    return key, value


@dataclass(frozen=True)
class ModelRef:
    """`name` (production alias, else newest ready), `name:3` or `name@alias`."""

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        if not isinstance(text, str) or not text:
            raise InvalidArgument("empty model reference")
        if "@" in text:
            name, _, alias = text.partition("@")
            return cls(check_name(name), alias=check_alias(alias))
        if ":" in text:
            name, _, ver = text.partition(":")
            return cls(check_name(name), version=parse_version(ver))
        return cls(check_name(text))

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


def parse_version(text: str | int) -> int:
    s = str(text)
    if not is_ascii_int(s) or len(s) > 9 or int(s) < 1:
        raise InvalidArgument(f"invalid version {s[:40]!r}: expected a positive integer")
    return int(s)


@dataclass
class Tensor:
    """A named array crossing the data plane; `parameters` carries per-tensor protocol options."""

    name: str
    data: np.ndarray
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def datatype(self) -> str:
        return v2_datatype(self.data.dtype)
