"""The shadow queue runs the copies waiting together (so the target's batcher can batch them), at most
`group` per worker, drops and counts what does not fit, and survives a copy that raises."""

from __future__ import annotations

import asyncio

from maas.traffic.shadow import ShadowQueue


def test_waiting_copies_run_together_up_to_the_group() -> None:
    async def scenario() -> tuple[list[int], int, int]:
        queue = ShadowQueue(max_size=16, workers=1, group=4)
        running, peaks, done = 0, [], 0
        gate = asyncio.Event()

        async def copy() -> None:
            nonlocal running, done
            running += 1
            peaks.append(running)
            await gate.wait()
            running -= 1
            done += 1

        async def broken() -> None:
            raise RuntimeError("a copy that fails")

        queue.start()
        offered = [queue.offer(copy) for _ in range(10)] + [queue.offer(broken)]
        assert all(offered)
        for _ in range(3):
            await asyncio.sleep(0)
        first_peak = max(peaks)
        gate.set()
        for _ in range(50):
            await asyncio.sleep(0)
        await queue.stop()
        return peaks, first_peak, done

    peaks, first_peak, done = asyncio.run(scenario())
    assert first_peak == 4  # the worker took four of the waiting copies at once, no more
    assert done == 10 and max(peaks) == 4  # all ran, never more than the group together; the failure didn't stop it


def test_a_full_or_stopped_queue_drops_and_counts() -> None:
    async def scenario() -> tuple[list[bool], int]:
        queue = ShadowQueue(max_size=2, workers=1)

        async def copy() -> None:
            await asyncio.sleep(0)

        before_start = queue.offer(copy)
        queue.start()
        offered = [queue.offer(copy) for _ in range(4)]  # the worker has not run yet: two fit
        await queue.stop()
        return [before_start, *offered], queue.dropped

    offered, dropped = asyncio.run(scenario())
    assert offered == [False, True, True, False, False] and dropped == 3
