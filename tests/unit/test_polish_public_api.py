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
