"""Data specs (read by maas.evaluate.load_dataset) shaped for a model's input; errors name expected vs got."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maas.errors import InvalidArgument
from maas.evaluate.datasets import legacy_split_indices
from maas.optimize.data import load_data
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
    train, test = legacy_split_indices(1797)
    assert not set(train) & set(test) and len(train) + len(test) == 1797
    assert np.array_equal(legacy_split_indices(1797)[1], test)


def test_the_fixed_split_is_the_one_optimize_always_used() -> None:
    """The seed-0 permutation rows, so versions whose lineage names sklearn:digits:train stay reproducible."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    order = np.random.default_rng(0).permutation(1797)
    test = load_data("sklearn:digits:test", SIGNATURE)
    assert np.array_equal(test.y, bunch.target[np.sort(order[:449])])  # type: ignore[arg-type]
    expected = bunch.images[np.sort(order[:449])] / 16.0
    assert np.allclose(test.x[:, 0, ::4, ::4][:, :7, :7], expected[:, :7, :7])  # 4x4 repeat, centre crop
    seeded = load_data("sklearn:digits?split=test", SIGNATURE)  # evaluate's stratified form also works
    assert seeded.x.shape == (450, 1, 28, 28) and seeded.x.max() <= 1.0


def test_npy_is_inputs_only_and_regression_sets_have_no_accuracy(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((3, 64), np.float32))
    ds = load_data(str(path), FLAT)
    assert ds.x.shape == (3, 64) and ds.y is None
    diabetes = Signature((TensorSpec("x", "FP32", (-1, 10)),), (TensorSpec("y", "FP32", (-1, 1)),))
    assert load_data("sklearn:diabetes", diabetes, what="calibration data").y is None
    with pytest.raises(InvalidArgument, match="regression targets"):
        load_data("sklearn:diabetes", diabetes)


def test_npz_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.ones((5, 8, 8)), y=np.arange(5))
    ds = load_data(str(path), FLAT)
    assert ds.x.shape == (5, 64) and list(ds.y) == [0, 1, 2, 3, 4]  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=r"has shape \[5, 8, 8\] but input 'image' expects"):
        load_data(str(path), SIGNATURE)  # a user's array is never silently resized
    with pytest.raises(InvalidArgument, match="unknown built-in dataset"):
        load_data("sklearn:mnist", FLAT)
    with pytest.raises(InvalidArgument, match="does not exist"):
        load_data(str(tmp_path / "missing.npz"), FLAT)
