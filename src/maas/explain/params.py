"""The knobs of one explanation (`parameters` of an explain request, or CLI flags), checked against the
server's caps before any work starts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from maas.errors import InvalidArgument

METHODS = ("permutation", "kernel", "occlusion", "integrated_gradients")
IMAGE_METHODS = ("occlusion",)
ALIASES = {"shap": "permutation", "ig": "integrated_gradients"}
# Infer parameters a client may send along (the body is infer's); they do not change an explanation.
_INFER_KEYS = frozenset({"binary_data_output", "timeout", "sequence_id", "priority"})
_KEYS = frozenset({"method", "target", "max_evals", "baseline", "window", "stride", "heatmap_png", "seed"})


@dataclass(frozen=True)
class Limits:
    """What the server allows per request."""

    max_evals: int = 2000
    max_rows: int = 16
    background_rows: int = 50


@dataclass(frozen=True)
class ExplainParams:
    method: str | None = None  # None: chosen from the signature
    target: Any = None  # class index or label; None: each row's predicted class
    max_evals: int | None = None
    baseline: Any = None  # a number (occlusion fill, IG baseline) or rows (a SHAP background set)
    window: int | None = None
    stride: int | None = None
    heatmap_png: bool = False
    seed: int = 0

    @classmethod
    def parse(cls, parameters: dict[str, Any] | None) -> ExplainParams:
        doc = dict(parameters or {})
        unknown = sorted(set(doc) - _KEYS - _INFER_KEYS)
        if unknown:
            raise InvalidArgument(f"unknown explain parameter(s) {unknown}; expected some of {sorted(_KEYS)}")
        method = doc.get("method")
        if method is not None:
            if not isinstance(method, str):
                raise InvalidArgument("parameter method must be a string")
            method = ALIASES.get(method, method)
            if method not in METHODS:
                raise InvalidArgument(f"unknown method {doc['method']!r}; expected one of {list(METHODS)}")
        heatmap = doc.get("heatmap_png", False)
        if not isinstance(heatmap, bool):
            raise InvalidArgument("parameter heatmap_png must be true or false")
        return cls(
            method=method,
            target=doc.get("target"),
            max_evals=_positive(doc, "max_evals"),
            baseline=doc.get("baseline"),
            window=_positive(doc, "window"),
            stride=_positive(doc, "stride"),
            heatmap_png=heatmap,
            seed=_positive(doc, "seed", minimum=0) or 0,
        )

    def check(self, limits: Limits) -> None:
        if self.max_evals is not None and self.max_evals > limits.max_evals:
            raise InvalidArgument(f"max_evals {self.max_evals} is over this server's cap of {limits.max_evals}")


def _positive(doc: dict[str, Any], key: str, minimum: int = 1) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgument(f"parameter {key} must be an integer of at least {minimum}")
    return value
