"""uvicorn's `Config` and `Server` without what its package `__init__` imports besides: `uvicorn.main`, its command
line (click) and its reload and worker supervisors (watchfiles, multiprocessing), ~20 ms of CPU before ready that
`maas serve` never uses (issue #19).

Python runs a package's `__init__` before any module in it, so the package is entered here without running it,
holding the names that `maas serve` and uvicorn's own modules take from it (`Config`, `Server`, `__version__`).
Any other name (`uvicorn.run`, `uvicorn.main`) runs the real `__init__` on first use, so code that imports uvicorn
after this sees the whole package. Where uvicorn was imported before, it is left as it is.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any


def _enter_without_init(name: str) -> ModuleType | None:
    """The package `name` in sys.modules with its `__init__` not run yet (None if it was imported already)."""
    if name in sys.modules:
        return None
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)

    def __getattr__(attr: str) -> Any:  # noqa: N807 - a module's __getattr__ (PEP 562)
        del package.__dict__["__getattr__"]
        assert spec.loader is not None
        spec.loader.exec_module(package)  # the real __init__: the rest of the package, as an import would
        return getattr(package, attr)

    package.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[name] = package
    return package


_package = _enter_without_init("uvicorn")

from uvicorn._version import __version__  # noqa: E402 - after the package is entered
from uvicorn.config import Config  # noqa: E402
from uvicorn.server import Server  # noqa: E402

if _package is not None:  # what uvicorn's __init__ would have set, and its lifespan modules take from it
    _package.__version__ = __version__  # type: ignore[attr-defined]
    _package.Config = Config  # type: ignore[attr-defined]
    _package.Server = Server  # type: ignore[attr-defined]

__all__ = ["Config", "Server"]
