"""A third-party package entered without running its `__init__`, for packages whose `__init__` imports far more
than `maas serve` uses before it is ready (issue #19: uvicorn_core.py, prometheus_core.py).

Python runs a package's `__init__` before any module in it. Entered here, the package is in `sys.modules` with its
`__init__` not run, so its modules import alone; the caller sets on it the names that `maas serve` and the
package's own modules take from it. A module of the package is imported when asked for by name; any other name
runs the real `__init__` on first use, so code that uses the package later sees all of it. A package imported
before is left as it is.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any


def enter_without_init(name: str) -> ModuleType | None:
    """The package `name` in sys.modules with its `__init__` not run yet (None if it was imported already)."""
    if name in sys.modules:
        return None
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)

    def __getattr__(attr: str) -> Any:  # noqa: N807 - a module's __getattr__ (PEP 562)
        if importlib.util.find_spec(f"{name}.{attr}") is not None:  # a module of it (`from . import values`)
            return importlib.import_module(f"{name}.{attr}")
        package.__dict__.pop("__getattr__", None)
        assert spec.loader is not None
        spec.loader.exec_module(package)  # the real __init__: the rest of the package, as an import would
        return getattr(package, attr)

    package.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[name] = package
    return package
