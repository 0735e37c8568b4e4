"""Metrics equal scikit-learn's on known predictions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as m

from maas.evaluate.metrics import (
    classification_metrics,
    looks_like_probabilities,
    regression_metrics,
    roc_auc,
    softmax,
)


def test_classification_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    proba = softmax(rng.normal(size=(200, 3)) + np.eye(3)[y] * 2)
    pred = proba.argmax(axis=1)
    out = classification_metrics(y, pred, proba, 3)
    assert out["accuracy"] == pytest.approx(m.accuracy_score(y, pred))
    assert out["f1_macro"] == pytest.approx(m.f1_score(y, pred, average="macro"))
    assert out["precision_weighted"] == pytest.approx(m.precision_score(y, pred, average="weighted"))
    assert out["recall_macro"] == pytest.approx(m.recall_score(y, pred, average="macro"))
    assert out["confusion_matrix"] == m.confusion_matrix(y, pred).tolist()
    assert out["roc_auc_ovr"] == pytest.approx(m.roc_auc_score(y, proba, multi_class="ovr"))
    assert out["log_loss"] == pytest.approx(m.log_loss(y, proba))
    assert 0.5 < out["accuracy"] < 1


def test_binary_auc_and_absent_classes() -> None:
    y = np.array([0, 1, 1, 0])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert roc_auc(y, proba) == pytest.approx(m.roc_auc_score(y, proba[:, 1]))
    # class 2 never occurs: one-vs-rest AUC is undefined, the rest still works with a full confusion matrix
    out = classification_metrics(y, np.array([0, 1, 0, 1]), np.hstack([proba, np.zeros((4, 1))]), 3)
    assert "roc_auc_ovr" not in out and len(out["confusion_matrix"]) == 3 and out["accuracy"] == 0.5


def test_without_probabilities_there_is_no_auc_or_log_loss() -> None:
    out = classification_metrics(np.array([0, 1, 2]), np.array([0, 1, 1]))
    assert out["accuracy"] == pytest.approx(2 / 3) and "log_loss" not in out and "roc_auc_ovr" not in out


def test_regression_matches_sklearn() -> None:
    y = np.array([3.0, -0.5, 2.0, 7.0])
    pred = np.array([2.5, 0.0, 2.0, 8.0])
    out = regression_metrics(y, pred)
    assert out["mae"] == pytest.approx(m.mean_absolute_error(y, pred))
    assert out["rmse"] == pytest.approx(np.sqrt(m.mean_squared_error(y, pred)))
    assert out["r2"] == pytest.approx(m.r2_score(y, pred))
    assert np.isnan(regression_metrics(np.array([1.0]), np.array([[2.0]]))["r2"])


def test_probability_detection() -> None:
    assert looks_like_probabilities(np.array([[0.2, 0.8], [0.5, 0.5]], np.float32))
    assert not looks_like_probabilities(np.array([[2.0, -1.0]]))
    assert np.allclose(softmax(np.array([[1.0, 1.0]])), 0.5)
