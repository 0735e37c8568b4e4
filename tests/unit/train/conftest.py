"""Fixtures for the training tests: a registry on SQLite, and the built-in data sets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def reg(home: Path, tmp_path: Path) -> Iterator[Any]:
    from maas.registry import Registry

    r = Registry.open(home, database_url=f"sqlite:///{tmp_path / 'registry.db'}")
    yield r
    r.close()


@pytest.fixture(autouse=True)
def _builtin_datasets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Until the evaluate branch (maas.evaluate.datasets) is merged, stand in for its `sklearn:NAME` sets."""
    try:
        import maas.evaluate.datasets  # noqa: F401
    except ImportError:
        from types import SimpleNamespace

        import numpy as np
        from sklearn import datasets

        from maas.train import data

        def load(spec: str, target: str | None) -> Any:
            name = spec.removeprefix("sklearn:")
            bunch = getattr(datasets, f"load_{name}")()
            task = "regression" if name == "diabetes" else "classification"
            names = tuple(str(c) for c in bunch.target_names) if task == "classification" else ()
            return SimpleNamespace(x=np.asarray(bunch.data, np.float32), y=np.asarray(bunch.target),
                                   fingerprint=f"stub-{name}", name=spec, task_hint=task, class_names=names)

        monkeypatch.setattr(data, "load_dataset", load)
