"""uvicorn's `Config` and `Server` without what its package `__init__` imports besides: `uvicorn.main`, its command
line (click) and its reload and worker supervisors (watchfiles, multiprocessing), ~20 ms of CPU before ready that
`maas serve` never uses (issue #19). The package is entered unrun (package_entry.py) holding the names that maas
and uvicorn's own modules take from it (`Config`, `Server`, `__version__`); `uvicorn.run` and the rest run its
real `__init__` on first use.
"""

from __future__ import annotations

from maas.server.package_entry import enter_without_init

_package = enter_without_init("uvicorn")

from uvicorn._version import __version__  # noqa: E402 - after the package is entered
from uvicorn.config import Config  # noqa: E402
from uvicorn.server import Server  # noqa: E402

if _package is not None:  # what uvicorn's __init__ would have set, and its lifespan modules take from it
    _package.__version__ = __version__  # type: ignore[attr-defined]
    _package.Config = Config  # type: ignore[attr-defined]
    _package.Server = Server  # type: ignore[attr-defined]

__all__ = ["Config", "Server"]
