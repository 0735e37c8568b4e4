"""`maas.__all__` is the curated public API: every name in it resolves, and nothing else public is exported."""

from __future__ import annotations

import maas


def test_every_name_in_all_resolves() -> None:
    for name in maas.__all__:
        assert getattr(maas, name) is not None, name
    assert sorted(maas.__all__) == sorted(set(maas.__all__))
    assert callable(maas.train) and callable(maas.register) and callable(maas.import_file)
    assert maas.Client.__module__ == "maas.client.sync_client" and maas.Registry.__name__ == "Registry"


def test_all_lists_the_documented_entry_points() -> None:
    assert {"Registry", "Client", "AsyncClient", "register", "import_file", "train", "MaasError"} <= set(maas.__all__)


def test_the_sync_client_has_every_verb_of_the_async_one() -> None:
    def verbs(cls: type) -> set[str]:
        return {n for n in vars(cls) if not n.startswith("_") and callable(getattr(cls, n))}

    assert verbs(maas.AsyncClient) - {"aclose"} <= verbs(maas.Client)


def test_train_is_a_plain_function_that_importing_the_training_package_leaves_alone() -> None:
    import importlib
    import inspect
    import sys
    import types

    importlib.import_module("maas.training.pipeline")  # a submodule import rebinds maas.<package>, never maas.train
    assert inspect.isfunction(maas.train) and maas.train.__module__ == "maas"
    assert type(sys.modules["maas.training"]) is types.ModuleType  # no class swapped in to make it callable
    from maas.training import train

    assert list(inspect.signature(maas.train).parameters) == list(inspect.signature(train).parameters)
