"""SHAP values through the `shap` package (Permutation and Kernel explainers), model-agnostic: they only
call the subject's scoring function, which runs the version on onnxruntime.

Both estimate, for each row, how much each feature moves the score away from its mean over the background
set (the base value); the attributions of a row add up to prediction - base value.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from maas.errors import InvalidArgument

Scores = Callable[[np.ndarray], np.ndarray]


def _shap() -> Any:
    with warnings.catch_warnings():
        # shap 0.51's colour set-up uses a matplotlib API that matplotlib 3.11 marks for deprecation
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import shap
    return shap


def min_evals(method: str, n_features: int) -> int:
    return 2 * n_features + 1 if method == "permutation" else n_features + 2


def default_evals(method: str, n_features: int) -> int:
    return max(min_evals(method, n_features), min(10 * (2 * n_features + 1), 500))


def shap_values(
    method: str, scores: Scores, rows: np.ndarray, background: np.ndarray, max_evals: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(attributions [rows, features, outputs], base values [rows, outputs]) by `method`."""
    n_features = rows.shape[1]
    if max_evals < min_evals(method, n_features):
        raise InvalidArgument(
            f"max_evals {max_evals} is too low for {method} over {n_features} features: "
            f"it needs at least {min_evals(method, n_features)}"
        )
    shap = _shap()
    if method == "permutation":
        masker = shap.maskers.Independent(background, max_samples=len(background))
        explainer = shap.PermutationExplainer(scores, masker, seed=seed)
        result = explainer(rows, max_evals=max_evals, silent=True)
        values, base = np.asarray(result.values), np.asarray(result.base_values)
    else:
        explainer = shap.KernelExplainer(scores, background)
        raw = explainer.shap_values(rows, nsamples=max_evals, silent=True, l1_reg=False)
        values = np.stack(raw, axis=-1) if isinstance(raw, list) else np.asarray(raw)
        base = np.broadcast_to(np.atleast_1d(np.asarray(explainer.expected_value)), (len(rows), values.shape[-1]))
    if values.ndim == 2:  # one output
        values = values[..., np.newaxis]
    return values.astype(np.float64), np.asarray(base, dtype=np.float64).reshape(len(rows), -1)
