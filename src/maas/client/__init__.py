"""Python SDK over HTTP: `AsyncClient` is the core, `Client` a thin synchronous facade over it."""

from maas.client.async_client import AsyncClient
from maas.client.sync_client import Client

__all__ = ["AsyncClient", "Client"]
