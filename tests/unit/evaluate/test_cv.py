"""Cross-validation: mean and std per metric over seeded folds, stratified for classification; allow-listed
model families with checked parameters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from maas.errors import InvalidArgument
from maas.evaluate import cross_validate, load_dataset
from maas.evaluate.datasets import make_dataset
from maas.evaluate.families import family_names, family_task, make_estimator, parse_param, parse_value


@pytest.fixture(autouse=True)
def one_blas_thread() -> Iterator[None]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def test_iris_logistic_regression_matches_sklearn_cross_val_score() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    data = load_dataset("sklearn:iris")
    scores = cross_validate(LogisticRegression(max_iter=500), data, k=5)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    expected = cross_val_score(LogisticRegression(max_iter=500), data.x, data.y, cv=folds)
    assert scores["accuracy"] == pytest.approx((expected.mean(), expected.std()))
    assert {"f1_macro", "log_loss", "roc_auc_ovr"} <= set(scores)
    assert cross_validate(LogisticRegression(max_iter=500), data, k=5) == scores  # seeded


def test_folds_are_stratified() -> None:
    """A 90/10 data set where an unstratified split would leave folds without the rare class."""
    from sklearn.dummy import DummyClassifier

    y = np.array([0] * 45 + [1] * 5)
    data = make_dataset(np.arange(50, dtype=np.float32)[:, None], y, "rare", "classification")
    scores = cross_validate(lambda: DummyClassifier(strategy="most_frequent"), data, k=5)
    assert scores["accuracy"] == (0.9, 0.0)  # exactly one rare sample in each fold of 10
    assert scores["roc_auc_ovr"] == (0.5, 0.0)


def test_regression_family() -> None:
    ridge = make_estimator("ridge", {"alpha": "0.5"}, "regression")
    scores = cross_validate(ridge, load_dataset("sklearn:diabetes"), k=3)
    assert set(scores) == {"mae", "rmse", "r2"} and 0.3 < scores["r2"][0] < 0.6 and scores["r2"][1] > 0


def test_too_small_for_k_folds_names_the_dataset() -> None:
    data = make_dataset(np.zeros((6, 2)), np.array([0, 0, 0, 0, 1, 1]), "tiny", "classification")
    with pytest.raises(InvalidArgument, match="tiny is too small for 3 folds: class 1 has only 2"):
        cross_validate(make_estimator("knn"), data, k=3)
    with pytest.raises(InvalidArgument, match="small is too small for 5 folds: 4 samples"):
        small = make_dataset(np.zeros((4, 1)), np.zeros(4), "small")
        cross_validate(make_estimator("ridge", task="regression"), small, k=5)
    with pytest.raises(InvalidArgument, match="k >= 2"):
        cross_validate(make_estimator("ridge", task="regression"), load_dataset("sklearn:diabetes"), k=1)


def test_families_are_an_allow_list_with_checked_params() -> None:
    assert family_task("random_forest") == "classification" and family_task("lasso") == "regression"
    assert family_task("ridge", "regression") == "regression" and family_task("naive_bayes", "regression") == (
        "classification")
    est = make_estimator("random_forest", {"n_estimators": "7", "max_depth": "None", "criterion": "entropy"})
    assert (est.n_estimators, est.max_depth, est.criterion) == (7, None, "entropy")
    for name in family_names():
        assert hasattr(make_estimator(name), "fit")
    with pytest.raises(InvalidArgument, match="unknown model family 'os.system'"):
        make_estimator("os.system")
    with pytest.raises(InvalidArgument, match="has no parameter 'bogus'"):
        make_estimator("svm", {"bogus": "1"})
    with pytest.raises(InvalidArgument, match="KEY=VALUE"):
        parse_param("C")
    assert parse_param(" C = 2.5 ") == ("C", "2.5") and parse_value("rbf") == "rbf" and parse_value("3") == 3


def test_cv_and_train_share_one_family_table() -> None:
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier

    from maas.training.families import make_estimator as train_estimator

    for name in family_names():
        task = family_task(name)
        assert type(make_estimator(name, task=task)) is type(train_estimator(name, task, {}, 0)), name
    assert type(make_estimator("gradient_boosting")) is GradientBoostingClassifier
    assert type(make_estimator("hist_gradient_boosting")) is HistGradientBoostingClassifier


def test_factory_and_bad_fit_are_reported(tmp_path: Any) -> None:
    from sklearn.linear_model import LinearRegression

    x = np.array([[np.nan]] * 10)
    data = make_dataset(x, np.arange(10.0), "holes", "regression")
    with pytest.raises(InvalidArgument, match="cannot fit on dataset holes"):
        cross_validate(LinearRegression, data, k=2)
