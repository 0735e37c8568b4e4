"""The collector paused while `maas serve` starts (server/collector_pause.py): off in the block, on again when the
server is ready (the start's garbage freed, the rest frozen) or when the block ends first, and untouched when it
was off."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from maas.server import collector_pause
from maas.server.collector_pause import collector_paused


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    gc.enable()
    gc.unfreeze()
    yield
    gc.enable()
    gc.unfreeze()


def test_ready_turns_the_collector_back_on_and_freezes_the_start() -> None:
    with collector_paused():
        assert not gc.isenabled()
        made_at_start = [[] for _ in range(100)]
        collector_pause.ready()
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(made_at_start)
        collector_pause.ready()  # a second call changes nothing
    assert gc.isenabled()


class _Held:
    """Stands for a model's array held by a garbage cycle (weakly referenceable, unlike a list)."""


def test_the_start_garbage_is_freed_not_frozen() -> None:
    with collector_paused():
        cycle = [_Held()]
        cycle.append(cycle)  # type: ignore[arg-type]
        held = weakref.ref(cycle[0])
        del cycle
        assert held() is not None  # the collector is off: the cycle waits
        collector_pause.ready()
    assert held() is None


def test_on_a_running_loop_the_pass_comes_after_the_ready_answers() -> None:
    async def body() -> tuple[int, int]:
        with collector_paused():
            collector_pause.ready()
            at_ready = gc.get_freeze_count()
            await asyncio.sleep(collector_pause.FREEZE_AFTER_S + 0.5)
            return at_ready, gc.get_freeze_count()

    at_ready, later = asyncio.run(body())
    assert at_ready == 0 and later > 0


def test_the_block_ending_first_turns_it_on_without_freezing() -> None:
    with pytest.raises(RuntimeError), collector_paused():  # e.g. the port was taken: serve never got ready
        assert not gc.isenabled()
        raise RuntimeError("no start")
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    collector_pause.ready()  # too late: nothing paused any more
    assert gc.get_freeze_count() == 0


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with collector_paused():
        collector_pause.ready()
        assert not gc.isenabled()
    assert not gc.isenabled()
    assert gc.get_freeze_count() == 0
