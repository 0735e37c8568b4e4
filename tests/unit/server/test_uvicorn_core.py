"""uvicorn's Config and Server without its package `__init__` (server/uvicorn_core.py): no `uvicorn.main` (click,
the supervisors) until a name only the real `__init__` defines is used, and then the whole package as usual."""

from __future__ import annotations

import subprocess
import sys

CHECK = r"""
import sys
from maas.server.uvicorn_core import Config, Server
import uvicorn
import uvicorn.lifespan.on  # takes Config from the package
assert "uvicorn.main" not in sys.modules and "click" not in sys.modules, sorted(sys.modules)
assert (uvicorn.Config, uvicorn.Server) == (Config, Server) and uvicorn.__version__
assert callable(uvicorn.run) and "uvicorn.main" in sys.modules  # the real __init__, on first use of run
assert uvicorn.Server is Server and callable(uvicorn.main)
"""

AFTER_UVICORN = r"""
import uvicorn
from maas.server.uvicorn_core import Config, Server
assert (uvicorn.Config, uvicorn.Server) == (Config, Server)
"""


def test_the_package_runs_its_init_only_when_a_name_of_its_own_is_used() -> None:
    subprocess.run([sys.executable, "-c", CHECK], check=True)


def test_an_already_imported_uvicorn_is_left_as_it_is() -> None:
    subprocess.run([sys.executable, "-c", AFTER_UVICORN], check=True)
