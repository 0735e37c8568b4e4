"""One explanation: picks the method (from the signature unless asked), the target class and the
background, runs it within the caps, and returns attributions shaped like each input."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from maas.errors import InvalidArgument
from maas.explain import gradients, occlusion, shap_methods
from maas.explain.heatmap import overlay_png
from maas.explain.params import IMAGE_METHODS, ExplainParams, Limits
from maas.explain.subject import Space, Subject

IG_STEPS = 32


@dataclass
class Explanation:
    ref: str
    method: str
    parameters: dict[str, Any]
    output: str
    scores: np.ndarray  # [rows, outputs]: the prediction explained
    targets: list[int]
    base_values: np.ndarray  # [rows]
    attributions: dict[str, np.ndarray]  # by input name, [rows, ...] like the input (in the user's space)
    inputs: dict[str, np.ndarray]  # the inputs explained, in that space
    image: bool
    feature_names: list[str] = field(default_factory=list)
    heatmaps: list[bytes] = field(default_factory=list)

    @property
    def prediction(self) -> np.ndarray:
        return self.scores[np.arange(len(self.targets)), self.targets]

    def flat_attributions(self) -> np.ndarray:
        return np.concatenate([a.reshape(a.shape[0], -1) for a in self.attributions.values()], axis=1)

    def summary(self) -> dict[str, Any]:
        """Everything but the arrays' data: for JSON documents the transports add the tensors to."""
        out = {
            "method": self.method,
            "parameters": dict(self.parameters),
            "output": self.output,
            "target": list(self.targets),
            "prediction": self.prediction.tolist(),
            "base_value": self.base_values.tolist(),
        }
        if self.heatmaps:
            out["parameters"]["heatmap_png"] = [base64.b64encode(p).decode("ascii") for p in self.heatmaps]
        return out


def default_method(subject: Subject, space: Space) -> str:
    # Kernel SHAP, not Permutation, for tabular: Permutation's first call in a process compiles numba kernels
    # (about 9 s measured here), Kernel needs no compilation and is as exact on small feature counts.
    return "occlusion" if _is_image(space) else "kernel"


def _is_image(space: Space) -> bool:
    if space.image:
        return True
    if len(space.arrays) != 1:
        return False
    row = next(iter(space.arrays.values())).shape[1:]
    if len(row) != 3 or not (row[0] in (1, 3) or row[2] in (1, 3)):
        return False
    return min(row[:2] if row[2] in (1, 3) else row[1:]) > 4  # HxWxC or CxHxW, larger than a few pixels


def _hwc(row: np.ndarray) -> tuple[np.ndarray, bool]:
    """A picture as HxWxC, and whether it was CxHxW (so attributions go back the same way)."""
    if row.ndim == 3 and row.shape[0] in (1, 3) and row.shape[2] not in (1, 3):
        return row.transpose(1, 2, 0), True
    return (row[..., np.newaxis] if row.ndim == 2 else row), False


def explain(
    subject: Subject, arrays: dict[str, np.ndarray], params: ExplainParams, limits: Limits, *,
    background: dict[str, np.ndarray] | None = None, background_source: str = "", deadline: float | None = None,
) -> Explanation:
    params.check(limits)
    subject.deadline = deadline if deadline is not None else float("inf")
    subject.evals = 0
    space = subject.space(arrays)
    if space.rows > limits.max_rows:
        raise InvalidArgument(
            f"{space.rows} rows to explain; this server explains at most {limits.max_rows} per request"
        )
    method = params.method or default_method(subject, space)
    image = _is_image(space)
    if method in IMAGE_METHODS and not image:
        raise InvalidArgument(f"method {method!r} explains images; {subject.version.ref} takes tabular input")
    if params.heatmap_png and not image:
        raise InvalidArgument(f"heatmap_png needs an image model; {subject.version.ref} takes tabular input")
    if method == "integrated_gradients" and not gradients.has_source(subject):
        raise InvalidArgument(
            f"method integrated_gradients needs the version's PyTorch source (source.pt2); "
            f"{subject.version.ref} has none: use permutation, kernel or occlusion"
        )
    started = time.monotonic()
    scores = subject.predict(space)
    n_classes = scores.shape[1]
    chosen = subject.target_index(params.target, n_classes)
    targets = [chosen if chosen is not None else int(np.argmax(s)) for s in scores]
    resolved: dict[str, Any] = {"method": method}
    if method in ("permutation", "kernel"):
        attributions, base = _shap(subject, space, method, targets, params, limits, background, background_source,
                                   resolved)
    elif method == "occlusion":
        attributions, base = _occlusion(subject, space, targets, params, limits, resolved)
    else:
        attributions, base = _gradients(subject, space, targets, params, resolved)
    resolved["evaluations"] = subject.evals
    resolved["seconds"] = round(time.monotonic() - started, 4)
    explanation = Explanation(
        ref=subject.version.ref, method=method, parameters=resolved, output=subject.output.name, scores=scores,
        targets=targets, base_values=base, attributions=attributions, inputs=space.arrays, image=image,
        feature_names=space.feature_names(),
    )
    if params.heatmap_png:
        (name, pictures), = space.arrays.items()
        for row, attr in zip(pictures, attributions[name], strict=True):
            picture, _ = _hwc(row)
            heat, _ = _hwc(attr)
            explanation.heatmaps.append(overlay_png(picture if space.image else _to_255(picture), heat))
    return explanation


def _to_255(picture: np.ndarray) -> np.ndarray:
    lo, hi = float(picture.min()), float(picture.max())
    return (picture - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(picture)


def _shap(
    subject: Subject, space: Space, method: str, targets: list[int], params: ExplainParams, limits: Limits,
    stored: dict[str, np.ndarray] | None, stored_source: str, resolved: dict[str, Any],
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rows = space.flatten()
    n_features = rows.shape[1]
    background, described = _background(space, params, stored, stored_source, n_features)
    if len(background) > limits.background_rows:
        pick = np.random.default_rng(params.seed).choice(len(background), limits.background_rows, replace=False)
        background = background[np.sort(pick)]
    max_evals = params.max_evals or shap_methods.default_evals(method, n_features)
    if max_evals > limits.max_evals:
        max_evals = max(limits.max_evals, shap_methods.min_evals(method, n_features))
        if max_evals > limits.max_evals:
            raise InvalidArgument(
                f"{method} over {n_features} features needs max_evals of at least {max_evals}, over this "
                f"server's cap of {limits.max_evals}"
            )
    resolved.update(max_evals=max_evals, background=described, background_rows=len(background), seed=params.seed)
    values, base = shap_methods.shap_values(
        method, lambda x: subject.scores(space, x), rows, background, max_evals, params.seed
    )
    index = np.arange(len(targets))
    chosen = values[index, :, targets]  # [rows, features]
    return space.unflatten(chosen), base[index, targets]


def _background(
    space: Space, params: ExplainParams, stored: dict[str, np.ndarray] | None, stored_source: str, n_features: int
) -> tuple[np.ndarray, str]:
    baseline = params.baseline
    if isinstance(baseline, bool):
        raise InvalidArgument("baseline must be a number or a list of background rows")
    if isinstance(baseline, int | float):
        return np.full((1, n_features), float(baseline)), f"constant {baseline}"
    if isinstance(baseline, list):
        try:
            rows = np.asarray(baseline, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidArgument("baseline rows must be numbers, one list per row") from None
        rows = rows.reshape(1, -1) if rows.ndim == 1 else rows.reshape(len(rows), -1)
        if rows.shape[1] != n_features or not len(rows):
            raise InvalidArgument(
                f"the background set has {rows.shape[1]} columns but the model's input has {n_features} features"
            )
        return rows, f"{len(rows)} rows from the request"
    if baseline is not None:
        raise InvalidArgument("baseline must be a number or a list of background rows")
    if stored is None:
        return np.zeros((1, n_features)), "zeros (no background set is stored with this version)"
    check_background(space, stored)
    return space.flatten({n: np.asarray(stored[n], np.float64) for n in space.arrays}), stored_source or "stored"


def check_background(space: Space, stored: dict[str, np.ndarray]) -> None:
    """A stored background must have the inputs' names and per-row shapes (its 'columns')."""
    if set(stored) != set(space.arrays):
        raise InvalidArgument(
            f"the background set has columns {sorted(stored)} but the model's inputs are {sorted(space.arrays)}"
        )
    for name, rows in space.arrays.items():
        if tuple(stored[name].shape[1:]) != tuple(rows.shape[1:]):
            raise InvalidArgument(
                f"the background set's {name!r} has rows of shape {list(stored[name].shape[1:])}, "
                f"the input has {list(rows.shape[1:])}"
            )


def _number(params: ExplainParams, method: str) -> float:
    if params.baseline is None:
        return 0.0
    if isinstance(params.baseline, bool) or not isinstance(params.baseline, int | float):
        raise InvalidArgument(f"baseline for {method} must be a number (the value that replaces the input)")
    return float(params.baseline)


def _occlusion(
    subject: Subject, space: Space, targets: list[int], params: ExplainParams, limits: Limits,
    resolved: dict[str, Any],
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    (name, pictures), = space.arrays.items()
    first, _ = _hwc(pictures[0])
    height, width = first.shape[:2]
    window = params.window or occlusion.default_window(height, width)
    stride = params.stride or window
    baseline = _number(params, "occlusion")
    positions = len(occlusion.window_positions(height, width, window, stride))
    max_evals = params.max_evals or min(positions + 2, limits.max_evals)
    resolved.update(window=window, stride=stride, baseline=baseline, max_evals=max_evals)
    out, bases = [], []
    for row, target in zip(pictures, targets, strict=True):
        picture, chw = _hwc(row)

        def scores(flat: np.ndarray, chw: bool = chw, shape: tuple[int, ...] = picture.shape) -> np.ndarray:
            batch = flat.reshape((len(flat), *shape))
            if chw:
                batch = batch.transpose(0, 3, 1, 2)
            return subject.scores(space, batch.reshape(len(flat), -1))

        attr, base = occlusion.occlude(
            scores, picture, target, window=window, stride=stride, baseline=baseline, max_evals=max_evals
        )
        out.append(attr.transpose(2, 0, 1) if chw else attr.reshape(row.shape))
        bases.append(base)
    return {name: np.stack(out)}, np.asarray(bases)


def _gradients(
    subject: Subject, space: Space, targets: list[int], params: ExplainParams, resolved: dict[str, Any]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    baseline = _number(params, "integrated_gradients")
    steps = min(params.max_evals or IG_STEPS, 1000)
    resolved.update(baseline=baseline, steps=steps, max_evals=steps)
    attributions, base_scores = gradients.integrated_gradients(subject, space, targets, baseline, steps)
    subject.evals += steps * space.rows
    (name, _), = space.arrays.items()
    return {name: attributions}, base_scores[np.arange(len(targets)), targets]
