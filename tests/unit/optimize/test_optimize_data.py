"""Data specs shaped for a model's input, with errors that name expected vs got."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maas.errors import InvalidArgument
from maas.optimize.data import load_data, split_indices
from maas.testing.digits import SIGNATURE
from maas.types import Signature, TensorSpec

FLAT = Signature((TensorSpec("x", "FP32", (-1, 64)),), (TensorSpec("y", "FP32", (-1, 10)),))


def test_digits_fit_a_28x28_input_and_a_flat_one() -> None:
    image = load_data("sklearn:digits:test", SIGNATURE)
    assert image.x.shape[1:] == (1, 28, 28) and image.x.dtype == np.float32
    assert image.y is not None and len(image.y) == len(image.x) == 449
    assert image.x.min() >= 0.0 and image.x.max() <= 1.0
    flat = load_data("sklearn:digits", FLAT)
    assert flat.x.shape == (1797, 64)


def test_split_is_fixed_and_disjoint() -> None:
    train, test = split_indices(1797)
    assert not set(train) & set(test) and len(train) + len(test) == 1797
    assert np.array_equal(split_indices(1797)[1], test)


def test_npz_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.ones((5, 8, 8)), y=np.arange(5))
    ds = load_data(str(path), FLAT)
    assert ds.x.shape == (5, 64) and list(ds.y) == [0, 1, 2, 3, 4]  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=r"has shape \[5, 8, 8\] but input 'image' expects"):
        load_data(str(path), SIGNATURE)  # a user's array is never silently resized
    with pytest.raises(InvalidArgument, match="unknown data set"):
        load_data("sklearn:mnist", FLAT)
    with pytest.raises(InvalidArgument, match="neither a known data set nor a file"):
        load_data(str(tmp_path / "missing.npz"), FLAT)
