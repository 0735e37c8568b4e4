"""The cyclic garbage collector paused while `maas serve` starts (issue #19, start to ready).

Why: importing and building the serving stack (SQLAlchemy and the ORM mappings, onnxruntime, gRPC, uvicorn,
prometheus_client) and loading the models makes ~100k objects that live as long as the process, and the
collector's passes over them (~270, two of them full: one during the imports, one while the model loaded) were
0.15-0.2 s of CPU in a start of ~1.1 s, measured with `gc.callbacks`; they found ~900 unreachable objects in all.
The pause starts with the serve command (the CLI's own imports come before it) and spans the model loads. When
the server is ready, `ready()` turns the collector back on, and a moment later one full pass frees the start's
garbage (a cycle made while loading, say a handled exception's traceback, can hold a model's arrays) and
freezes what is left: out of every later pass, so the collector's pauses while serving are shorter too.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Seconds from ready to the full pass, so that the first answers (the ready probe) do not wait for it.
FREEZE_AFTER_S = 0.5

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
        if _paused:
            _paused = False
            gc.enable()


def ready() -> None:
    """The server is ready: the collector runs again (if paused here); the start's garbage is collected and the
    rest frozen `FREEZE_AFTER_S` later on the running loop (at once without one)."""
    global _paused
    if not _paused:
        return
    _paused = False
    gc.enable()
    try:
        asyncio.get_running_loop().call_later(FREEZE_AFTER_S, _collect_and_freeze)
    except RuntimeError:  # no running loop
        _collect_and_freeze()


def _collect_and_freeze() -> None:
    gc.collect()
    gc.freeze()
