"""Background sets for SHAP, sampled from data rows and stored with the version: by `maas explain background`,
and automatically (when none is stored yet) where `maas train` and `maas eval` already hold the data."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from maas.errors import InvalidArgument, MaasError
from maas.explain.dataset import MAX_IMAGE_PIXELS, as_pngs
from maas.explain.subject import Subject
from maas.registry import Registry

log = logging.getLogger(__name__)

ROWS = 100


def store_background(
    registry: Registry, ref: str, data: str, *, rows: int = ROWS, seed: int = 0, source: str = ""
) -> Any:
    """Sample up to `rows` rows of `data` and store them as the version's background set (checked against
    the version's inputs first: a set with the wrong columns is refused)."""
    from maas.evaluate.datasets import load_dataset

    version = registry.get(ref)
    dataset = load_dataset(data)
    return store_background_rows(registry, version, dataset.x, rows=rows, seed=seed, source=source or dataset.name)


def store_background_rows(
    registry: Registry, version: Any, x: np.ndarray, *, rows: int = ROWS, seed: int = 0, source: str = ""
) -> Any:
    pick = np.sort(np.random.default_rng(seed).choice(len(x), min(rows, len(x)), replace=False))
    sample = x[pick]
    subject = Subject(registry, version, MAX_IMAGE_PIXELS)
    try:
        if len(subject.model_inputs) != 1:
            raise InvalidArgument(
                f"{version.ref} has {len(subject.model_inputs)} inputs; set its background set from Python"
            )
        name = subject.model_inputs[0].name
        if subject.decodes and sample.dtype != object:
            sample = as_pngs(sample)
        if sample.dtype != object:
            _check_rows(sample, subject.model_inputs[0].shape[1:], version.ref, name)
        space = subject.space({name: sample})
    finally:
        subject.close()
    return registry.set_explain_background(version.ref, space.arrays, source=source)


def store_if_missing(registry: Registry, version: Any, x: np.ndarray, source: str) -> None:
    """Best effort: data that cannot serve as the version's background (other columns…) is skipped."""
    try:
        if registry.explain_background(version.ref) is not None:
            return
        store_background_rows(registry, version, x, source=source)
    except (MaasError, ValueError, TypeError) as exc:  # an add-on to train/eval: never their failure
        log.info("no explanation background stored for %s: %s", version.ref, exc)


def _check_rows(sample: np.ndarray, want: tuple[int, ...], ref: str, name: str) -> None:
    got = sample.shape[1:]
    if len(got) == 1 and len(want) == 1 and want[0] > 0 and got[0] != want[0]:
        raise InvalidArgument(
            f"the background set has {got[0]} columns but {ref}'s input {name!r} has {want[0]} features"
        )
    if len(got) != len(want) or any(w > 0 and w != g for w, g in zip(want, got, strict=False)):
        raise InvalidArgument(
            f"the background set has rows of shape {list(got)} but {ref}'s input {name!r} takes {list(want)}"
        )
