"""The control API on a real server, through the synchronous SDK client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from maas.client import Client
from maas.config import Settings
from maas.errors import InvalidArgument, NotFound, Unauthenticated
from maas.registry import Registry
from maas.testing.live_server import LiveServer, live_server


@pytest.fixture
def server(home: Path, database_url: str) -> Iterator[LiveServer]:
    settings = Settings(home=home, database_url=database_url)
    with Registry(settings) as reg:
        reg.publish("iris", {"model.onnx": b"not a real model"})
    with live_server(settings) as srv:
        yield srv


def test_client_verbs_against_a_live_server(server: LiveServer) -> None:
    with Client(server.http_url) as c:
        assert [m.name for m in c.list_models()] == ["iris"]
        v = c.set_alias("iris", "production", 1)
        assert v.aliases == ("production",)
        assert c.get("iris").version == 1
        with pytest.raises(NotFound):
            c.get("iris:7")
        with pytest.raises(InvalidArgument):
            c.get("../etc")


def test_api_key_applies_to_the_live_server(home: Path) -> None:
    settings = Settings(home=home, api_key="k3y")
    with live_server(settings) as srv:
        with Client(srv.http_url, api_key="") as c, pytest.raises(Unauthenticated):
            c.list_models()
        with Client(srv.http_url, api_key="k3y") as c:
            assert c.list_models() == []
