"""Packages entered without their `__init__` (server/package_entry.py, uvicorn_core.py, prometheus_core.py): the
names maas takes before ready are there, the rest of the package is not imported until a name only the real
`__init__` defines is used, and then it is all there as usual. Each check runs in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

UVICORN = r"""
import sys
from maas.server.uvicorn_core import Config, Server
import uvicorn
import uvicorn.lifespan.on  # takes Config from the package
assert "uvicorn.main" not in sys.modules and "click" not in sys.modules, sorted(sys.modules)
assert (uvicorn.Config, uvicorn.Server) == (Config, Server) and uvicorn.__version__
assert callable(uvicorn.run) and "uvicorn.main" in sys.modules  # the real __init__, on first use of run
assert uvicorn.Server is Server and callable(uvicorn.main)
"""

PROMETHEUS = r"""
import sys
from maas.server.prometheus_core import CollectorRegistry, Counter
import prometheus_client
from prometheus_client.core import CounterMetricFamily
registry = CollectorRegistry()
Counter("c", "a counter", ["x"], registry=registry).labels("y").inc()
assert "prometheus_client.exposition" not in sys.modules, sorted(m for m in sys.modules if "prometheus" in m)
assert prometheus_client.values.ValueClass  # a module of it, by name, without the rest
assert "prometheus_client.exposition" not in sys.modules
text = prometheus_client.generate_latest(registry).decode()  # the real __init__, on first use
assert 'c_total{x="y"} 1.0' in text, text
assert prometheus_client.REGISTRY.get_sample_value("process_cpu_seconds_total") is not None  # its collectors
"""

BEFORE = r"""
import prometheus_client, uvicorn
from maas.server.prometheus_core import Counter
from maas.server.uvicorn_core import Config, Server
assert (uvicorn.Config, uvicorn.Server, prometheus_client.Counter) == (Config, Server, Counter)
"""


def run(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True)


def test_uvicorn_runs_its_init_only_when_a_name_of_its_own_is_used() -> None:
    run(UVICORN)


def test_prometheus_client_runs_its_init_only_when_a_name_of_its_own_is_used() -> None:
    run(PROMETHEUS)


def test_packages_imported_before_are_left_as_they_are() -> None:
    run(BEFORE)
