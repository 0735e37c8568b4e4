"""The split is seeded and stratified; data-dependent checks fail before training."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from maas.errors import InvalidArgument
from maas.training import config, data


def _prepare(**over: Any) -> data.Prepared:
    cfg = config.parse({"name": "m", "data": {"source": "sklearn:iris"}, "model": {"family": "svm"}, **over})
    return data.prepare(cfg, data.load_dataset(cfg.data.source, cfg.data.target))


def test_split_is_stratified_and_seeded() -> None:
    a, b, c = _prepare(seed=1), _prepare(seed=1), _prepare(seed=2)
    assert (len(a.y_train), len(a.y_val), len(a.y_test)) == (90, 30, 30)
    for part in (a.y_train, a.y_val, a.y_test):
        counts = np.bincount(part, minlength=3)
        assert counts.max() - counts.min() <= 1  # iris has 50 per class: each split keeps the thirds
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.x_test, c.x_test)
    all_rows = np.concatenate([a.x_train, a.x_val, a.x_test])
    assert len(np.unique(all_rows, axis=0)) == len(np.unique(a.x_fit.tolist() + a.x_test.tolist(), axis=0))
    assert a.labels == ["setosa", "versicolor", "virginica"]


def test_string_labels_are_encoded() -> None:
    y, names = data.encode_labels(np.array(["b", "a", "b", "c"]), (), True)
    assert names == ["a", "b", "c"] and y.tolist() == [1, 0, 1, 2]


def test_too_few_rows_for_k_folds_fails_before_training() -> None:
    space = {"C": {"type": "loguniform", "low": 0.1, "high": 10}}
    with pytest.raises(InvalidArgument, match=r"^search\.k: .*fewer than the 50 folds"):
        _prepare(search={"space": space, "k": 50})
    with pytest.raises(InvalidArgument, match=r"^search\.metric: 'r2' does not apply to classification"):
        _prepare(search={"space": space, "metric": "r2"})


def test_missing_target_column_names_the_field(tmp_path: Any) -> None:
    (tmp_path / "d.csv").write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(20)))
    with pytest.raises(InvalidArgument, match=r"^data\.target: "):
        data.load_dataset(str(tmp_path / "d.csv"), "nope")
