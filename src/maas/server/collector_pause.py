"""The cyclic garbage collector paused while `maas serve` starts (issue #19, start to ready).

Why: importing and building the serving stack (SQLAlchemy and the ORM mappings, onnxruntime, gRPC, uvicorn,
prometheus_client) and loading the models makes ~100k objects that live as long as the process, and the
collector's passes over them (~270, two of them full: one during the imports, one while the model loaded) were
0.15-0.2 s of CPU in a start of ~1.1 s, measured with `gc.callbacks`; they found ~900 unreachable objects in all.
The pause starts with the serve command (the CLI's own imports come before it) and spans the model loads. When
the server is ready, `ready()` freezes what the start made (out of every later pass: shorter collector pauses
while serving too; the start's few garbage cycles stay, once) and turns the collector back on.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_paused = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """The collector off (if it was on) until `ready()`, or until the block ends, whichever comes first."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True
    try:
        yield
    finally:
        _resume(freeze=False)


def ready() -> None:
    """The server is ready: what the start made is frozen, and the collector runs again (if paused here)."""
    _resume(freeze=True)


def _resume(freeze: bool) -> None:
    global _paused
    if _paused:
        _paused = False
        if freeze:
            gc.freeze()
        gc.enable()
