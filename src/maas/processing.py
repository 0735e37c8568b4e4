"""Declarative pre/post-processing steps stored with a version: validated data, never user code.

A version's `config` holds `preprocess` and `postprocess` lists of steps such as
    [{"op": "decode_image", "mode": "L"}, {"op": "resize", "size": [28, 28]}, {"op": "scale", "factor": 0.0039}]
    [{"op": "softmax"}, {"op": "topk", "k": 3}, {"op": "labels"}]
`validate` normalises them (defaults filled in) and rejects anything else; `maas.serving` executes them.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from maas.errors import InvalidArgument


class _Step(BaseModel):
    # Validators are built on first use, not at import: every `maas serve` imports this module, and building them
    # all was ~25 ms of its start; a version with no steps never needs them.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class DecodeImage(_Step):
    """Decode PNG/JPEG bytes (a BYTES tensor) into pixels; `mode` is a Pillow colour mode."""

    op: Literal["decode_image"]
    mode: Literal["L", "RGB", "RGBA"] = "RGB"


class Resize(_Step):
    op: Literal["resize"]
    size: tuple[Annotated[int, Field(gt=0, le=8192)], Annotated[int, Field(gt=0, le=8192)]]  # (height, width)


class CenterCrop(_Step):
    op: Literal["center_crop"]
    size: tuple[Annotated[int, Field(gt=0, le=8192)], Annotated[int, Field(gt=0, le=8192)]]


class Scale(_Step):
    op: Literal["scale"]
    factor: float


class Normalize(_Step):
    op: Literal["normalize"]
    mean: list[float] = Field(min_length=1, max_length=4)
    std: list[Annotated[float, Field(gt=0)]] = Field(min_length=1, max_length=4)


class Layout(_Step):
    """Arrange decoded images (always produced as NHWC) into the layout the model expects."""

    op: Literal["layout"]
    to: Literal["NHWC", "NCHW", "NHW"]


class Cast(_Step):
    op: Literal["cast"]
    datatype: Literal["FP32", "FP16", "FP64", "INT64", "INT32", "UINT8"]


class Softmax(_Step):
    op: Literal["softmax"]
    axis: int = -1


class TopK(_Step):
    op: Literal["topk"]
    k: int = Field(1, gt=0, le=1000)


class Labels(_Step):
    """Map class indices to the version's stored labels."""

    op: Literal["labels"]


PreStep = Annotated[DecodeImage | Resize | CenterCrop | Scale | Normalize | Layout | Cast, Field(discriminator="op")]
PostStep = Annotated[Softmax | TopK | Labels, Field(discriminator="op")]


@functools.cache
def _adapter(where: str) -> TypeAdapter[Any]:
    return TypeAdapter(list[PreStep] if where == "preprocess" else list[PostStep])


def parse_pre(steps: Any) -> list[PreStep]:
    return _parse(steps, "preprocess")


def parse_post(steps: Any) -> list[PostStep]:
    return _parse(steps, "postprocess")


def _parse(steps: Any, where: str) -> list[Any]:
    if steps is None:
        return []
    try:
        return list(_adapter(where).validate_python(steps))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise InvalidArgument(f"invalid {where} step at {loc or 'top'}: {first['msg']}") from None


def validate(preprocess: Any = None, postprocess: Any = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Check both lists and return them normalised, ready to store in a version's config."""
    pre = [s.model_dump() for s in parse_pre(preprocess)]
    post = [s.model_dump() for s in parse_post(postprocess)]
    for s in pre:
        for k, v in s.items():
            if isinstance(v, tuple):
                s[k] = list(v)
    return pre, post
