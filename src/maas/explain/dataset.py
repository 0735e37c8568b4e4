"""Explanations of a whole data set (`maas explain REF --data D`): every row explained, then global feature
importance (mean |attribution|) and per-class summaries, ready for the JSON and HTML reports."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from maas.errors import InvalidArgument
from maas.explain.explainer import Explanation, explain
from maas.explain.params import ExplainParams, Limits
from maas.explain.subject import Subject
from maas.registry import Registry

DEFAULT_ROWS = "0:50"
CHUNK = 16  # rows per explain call: progress stays visible and memory bounded
LOCAL = Limits(max_evals=10**6, max_rows=CHUNK, background_rows=100)
MAX_IMAGE_PIXELS = 4096 * 4096


@dataclass
class DatasetExplanation:
    ref: str
    dataset: str
    rows: tuple[int, int]
    method: str
    parameters: dict[str, Any]
    labels: tuple[str, ...]
    image: bool
    feature_names: list[str]
    inputs: np.ndarray  # [rows, ...] in the explained space (pixels for image models)
    attributions: np.ndarray  # [rows, ...] like `inputs`
    targets: np.ndarray  # [rows] class explained per row
    predictions: np.ndarray
    base_values: np.ndarray

    def label(self, index: int) -> str:
        return self.labels[index] if 0 <= index < len(self.labels) else str(index)

    def importance(self) -> np.ndarray:
        """Mean |attribution| per feature (flattened), over every row."""
        return np.abs(self.attributions.reshape(len(self.attributions), -1)).mean(axis=0)

    def per_class(self) -> dict[str, dict[str, Any]]:
        out = {}
        flat = np.abs(self.attributions.reshape(len(self.attributions), -1))
        for t in sorted(set(int(t) for t in self.targets)):
            chosen = self.targets == t
            mean = flat[chosen].mean(axis=0)
            out[self.label(t)] = {"rows": int(chosen.sum()), "importance": mean}
        return out

    def to_dict(self, top: int = 20) -> dict[str, Any]:
        importance = self.importance()
        order = np.argsort(-importance)[:top]
        per_class = {
            label: {
                "rows": c["rows"],
                "top_features": [
                    {"feature": self.feature_names[i], "importance": float(c["importance"][i])}
                    for i in np.argsort(-c["importance"])[:top]
                ],
            }
            for label, c in self.per_class().items()
        }
        return {
            "ref": self.ref,
            "dataset": self.dataset,
            "rows": list(self.rows),
            "method": self.method,
            "parameters": self.parameters,
            "n_features": len(self.feature_names),
            "importance": [{"feature": self.feature_names[i], "importance": float(importance[i])} for i in order],
            "per_class": per_class,
            "base_value_mean": float(np.mean(self.base_values)),
        }


def parse_rows(spec: str, n: int) -> tuple[int, int]:
    """`START:STOP` (either may be empty) clipped to the data set's `n` rows."""
    start_s, sep, stop_s = spec.partition(":")
    try:
        start = int(start_s) if start_s.strip() else 0
        stop = int(stop_s) if stop_s.strip() else n
    except ValueError:
        raise InvalidArgument(f"--rows must be START:STOP (e.g. 0:50), got {spec!r}") from None
    if not sep or start < 0 or stop <= start:
        raise InvalidArgument(f"--rows must be START:STOP with 0 <= START < STOP, got {spec!r}")
    if start >= n:
        raise InvalidArgument(f"--rows {spec}: the data set has only {n} rows")
    return start, min(stop, n)


def as_pngs(x: np.ndarray) -> np.ndarray:
    """Numeric rows (e.g. sklearn's 8x8 digits as 64 values) as square grey PNGs, for a model that decodes
    images: the version's own pre-processing then applies, as it would to an uploaded picture."""
    from PIL import Image

    side = int(round(np.sqrt(x[0].size)))
    if side * side != x[0].size:
        raise InvalidArgument("numeric rows for an image model must be square pictures (e.g. 64 = 8x8 values)")
    top = float(x.max()) or 1.0
    out = np.empty(len(x), dtype=object)
    for i, row in enumerate(x):
        buf = io.BytesIO()
        pixels = np.clip(np.asarray(row, np.float64).reshape(side, side) / top * 255, 0, 255).astype(np.uint8)
        Image.fromarray(pixels, "L").save(buf, format="PNG")
        out[i] = buf.getvalue()
    return out


def explain_dataset(
    registry: Registry, ref: str, data: str, *, rows: str = DEFAULT_ROWS, params: ExplainParams | None = None,
    progress: Any = None,
) -> DatasetExplanation:
    from maas.evaluate.datasets import load_dataset

    params = params or ExplainParams()
    version = registry.get(ref)
    dataset = load_dataset(data)
    start, stop = parse_rows(rows, len(dataset))
    x = dataset.x[start:stop]
    subject = Subject(registry, version, MAX_IMAGE_PIXELS)
    try:
        if len(subject.model_inputs) != 1:
            raise InvalidArgument(f"{version.ref} has {len(subject.model_inputs)} inputs; data sets explain one")
        if subject.decodes and x.dtype != object:
            x = as_pngs(x)
        name = subject.model_inputs[0].name
        stored = registry.explain_background(version.ref)
        parts: list[Explanation] = []
        for begin in range(0, len(x), CHUNK):
            parts.append(explain(
                subject, {name: x[begin:begin + CHUNK]}, params, LOCAL,
                background=stored.arrays if stored else None, background_source=stored.source if stored else "",
            ))
            if progress is not None:
                progress(min(begin + CHUNK, len(x)), len(x))
    finally:
        subject.close()
    first = parts[0]
    return DatasetExplanation(
        ref=version.ref, dataset=dataset.name, rows=(start, stop), method=first.method,
        parameters={k: v for k, v in first.parameters.items() if k not in ("seconds", "evaluations")},
        labels=subject.labels or dataset.class_names, image=first.image, feature_names=first.feature_names,
        inputs=np.concatenate([p.inputs[name] for p in parts]),
        attributions=np.concatenate([p.attributions[name] for p in parts]),
        targets=np.concatenate([np.asarray(p.targets) for p in parts]),
        predictions=np.concatenate([p.prediction for p in parts]),
        base_values=np.concatenate([p.base_values for p in parts]),
    )
