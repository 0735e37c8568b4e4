"""The collector paused while `maas serve` starts (server/collector_pause.py): off in the block, on again when the
server is ready (the start's objects frozen) or when the block ends first, and untouched when it was off."""

from __future__ import annotations

import gc
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
