"""Merging queued requests into batches and splitting outputs back (serving/merging.py)."""

from __future__ import annotations

import numpy as np
import pytest

from maas.errors import Internal
from maas.serving import merging


def _request(rows: int, width: int = 3, dtype: str = "float32") -> dict[str, np.ndarray]:
    return {"x": np.arange(rows * width, dtype=dtype).reshape(rows, width)}


def test_requests_of_one_shape_form_one_group_in_arrival_order() -> None:
    assert merging.group_compatible([_request(1), _request(2), _request(1)]) == [[0, 1, 2]]


def test_requests_that_cannot_be_concatenated_are_grouped_apart() -> None:
    requests = [_request(1), _request(1, width=4), _request(2), _request(1, dtype="float64"), _request(1, width=4)]
    assert merging.group_compatible(requests) == [[0, 2], [1, 4], [3]]


def test_inputs_given_in_another_order_still_merge() -> None:
    a = {"x": np.zeros((1, 2), np.float32), "y": np.zeros((1,), np.int64)}
    b = {"y": np.ones((2,), np.int64), "x": np.ones((2, 2), np.float32)}
    assert merging.group_compatible([a, b]) == [[0, 1]]
    merged = merging.merge([a, b])
    assert merged["x"].shape == (3, 2) and merged["y"].tolist() == [0, 1, 1]


def test_outputs_are_cut_at_each_callers_rows() -> None:
    out = {"y": np.arange(12).reshape(6, 2), "z": np.arange(6)}
    parts = merging.split(out, [1, 3, 2])
    assert [p["y"].shape[0] for p in parts] == [1, 3, 2]
    assert parts[1]["y"].tolist() == [[2, 3], [4, 5], [6, 7]] and parts[2]["z"].tolist() == [4, 5]
    assert all(np.shares_memory(p["y"], out["y"]) for p in parts)  # views, not copies


def test_an_output_without_the_batch_rows_is_a_model_error() -> None:
    with pytest.raises(Internal, match="expected 3 rows"):
        merging.split({"y": np.zeros((2, 1))}, [1, 2])


def test_no_requests_make_no_groups() -> None:
    assert merging.group_compatible([]) == []
