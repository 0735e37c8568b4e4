"""Dynamic batching for one loaded model version: a bounded queue, event-driven, cut by size or delay.

A scheduler task waits for a free instance, then for requests: it cuts a batch as soon as the queue holds
`max_batch_size` rows (or the largest preferred size), or when the oldest request has waited
`max_queue_delay_us`. Batches run in the shared thread pool, never on the event loop; tensor merging and
splitting live in `merging.py`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol

from maas.errors import DeadlineExceeded, Internal, MaasError, ResourceExhausted, Unavailable
from maas.serving import merging
from maas.serving.merging import Tensors
from maas.serving.options import BatchingPolicy
from maas.serving.runtime import Runtime

log = logging.getLogger(__name__)


class BatchObserver(Protocol):
    """Where the batcher reports what it measures (metrics); called on the event loop."""

    def queue_depth(self, depth: int) -> None: ...
    def queued(self, seconds: float) -> None: ...
    def computed(self, rows: int, seconds: float) -> None: ...


class _NoObserver:
    def queue_depth(self, depth: int) -> None:
        pass

    def queued(self, seconds: float) -> None:
        pass

    def computed(self, rows: int, seconds: float) -> None:
        pass


@dataclass(eq=False)
class _Pending:
    inputs: Tensors
    rows: int
    future: asyncio.Future[Tensors]
    enqueued: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class _GroupResult:
    """What one compatible group of a batch produced, computed in a worker thread."""

    members: tuple[int, ...]
    outputs: tuple[Tensors, ...] | None
    error: MaasError | None
    rows: int
    seconds: float


class Batcher:
    """Queue + scheduler for one version; `submit` returns exactly the caller's rows of every output."""

    def __init__(
        self,
        label: str,
        policy: BatchingPolicy,
        runtimes: Sequence[Runtime],
        executor: Executor,
        observer: BatchObserver | None = None,
    ) -> None:
        if not runtimes:
            raise Internal(f"{label}: a batcher needs at least one runtime instance")
        self.label = label
        self.policy = policy
        self._runtimes = tuple(runtimes)
        self._executor = executor
        self._observer = observer or _NoObserver()
        self._queue: deque[_Pending] = deque()
        self._arrived = asyncio.Event()
        self._idle: asyncio.Queue[Runtime] = asyncio.Queue()
        self._running: set[asyncio.Task[None]] = set()
        self._scheduler: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def depth(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        for runtime in self._runtimes:
            self._idle.put_nowait(runtime)
        self._scheduler = asyncio.get_running_loop().create_task(
            self._schedule(), name=f"batcher {self.label}"
        )

    async def submit(self, inputs: Tensors, timeout_s: float) -> Tensors:
        if self._closed:
            raise Unavailable(f"{self.label} is shutting down")
        if len(self._queue) >= self.policy.max_queue_size:
            raise ResourceExhausted(
                f"{self.label}: the queue is full ({self.policy.max_queue_size} requests); retry later"
            )
        pending = _Pending(inputs, merging.rows(inputs), asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        self._observer.queue_depth(len(self._queue))
        self._arrived.set()
        try:
            return await asyncio.wait_for(pending.future, timeout_s)
        except TimeoutError:
            raise DeadlineExceeded(f"{self.label}: no result within {timeout_s:g} s") from None

    async def stop(self, grace_s: float) -> None:
        """Refuse new work, let queued and running batches finish for up to `grace_s`, then fail the rest."""
        self._closed = True
        try:
            await asyncio.wait_for(self._drain(), grace_s)
        except TimeoutError:
            log.warning(
                "%s: %d requests still queued after %.1f s; failing them", self.label, self.depth, grace_s
            )
        if self._scheduler is not None:
            self._scheduler.cancel()
            await asyncio.gather(self._scheduler, return_exceptions=True)
        while self._queue:
            pending = self._queue.popleft()
            if not pending.future.done():
                pending.future.set_exception(
                    Unavailable(f"{self.label} was unloaded before running the request")
                )
        # Threads cannot be interrupted: wait for running batches so sessions are not closed under them.
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        self._observer.queue_depth(0)

    async def _drain(self) -> None:
        while self._queue or self._running:
            waiters: list[asyncio.Future[Any]] = [p.future for p in self._queue]
            waiters.extend(self._running)
            await asyncio.wait(waiters)

    # --- scheduling -------------------------------------------------------------------------------------
    async def _schedule(self) -> None:
        while True:
            # Taking an instance first lets the queue grow into bigger batches while every instance is busy.
            runtime = await self._idle.get()
            batch = await self._next_batch()
            self._observer.queue_depth(len(self._queue))
            task = asyncio.get_running_loop().create_task(self._execute(runtime, batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    def _drop_abandoned(self) -> None:
        """Forget requests whose caller gave up (timeout, disconnect) before they were batched."""
        if any(p.future.done() for p in self._queue):
            self._queue = deque(p for p in self._queue if not p.future.done())

    def _queued_rows(self, enough: int) -> int:
        total = 0
        for p in self._queue:
            total += p.rows
            if total >= enough:
                break
        return total

    async def _next_batch(self) -> list[_Pending]:
        policy = self.policy
        target = max(policy.preferred_batch_sizes, default=policy.max_batch_size)
        while True:
            self._drop_abandoned()
            if not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            if policy.max_batch_size == 0:
                return [self._queue.popleft()]
            deadline = self._queue[0].enqueued + policy.max_queue_delay_us / 1e6
            while self._queued_rows(target) < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except TimeoutError:
                    break
            self._drop_abandoned()
            if self._queue:
                return self._cut()

    def _cut(self) -> list[_Pending]:
        """The longest prefix within `max_batch_size`, cut to a preferred size when one is reachable."""
        limit = self.policy.max_batch_size
        preferred = set(self.policy.preferred_batch_sizes)
        count, total, best_preferred = 0, 0, 0
        for p in self._queue:
            if count and total + p.rows > limit:
                break
            count += 1
            total += p.rows
            if total in preferred:
                best_preferred = count
        take = best_preferred or count
        return [self._queue.popleft() for _ in range(take)]

    # --- execution --------------------------------------------------------------------------------------
    async def _execute(self, runtime: Runtime, batch: list[_Pending]) -> None:
        try:
            live = [p for p in batch if not p.future.done()]
            if not live:
                return
            started = time.monotonic()
            for p in live:
                self._observer.queued(started - p.enqueued)
            loop = asyncio.get_running_loop()
            batched = self.policy.max_batch_size > 0
            results = await loop.run_in_executor(
                self._executor, _compute, runtime, [p.inputs for p in live], batched
            )
            for result in results:
                self._observer.computed(result.rows, result.seconds)
                for position, member in enumerate(result.members):
                    future = live[member].future
                    if future.done():
                        continue
                    if result.error is not None:
                        future.set_exception(result.error)
                    else:
                        assert result.outputs is not None
                        future.set_result(result.outputs[position])
        except Exception as exc:  # the pool refused work (shut down) or a bug here: no caller may hang
            log.exception("%s: batch execution failed", self.label)
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(Internal(f"batch execution failed: {exc}"))
        finally:
            self._idle.put_nowait(runtime)


def _compute(runtime: Runtime, requests: list[Tensors], batched: bool) -> list[_GroupResult]:
    """Runs in a worker thread: one model run per group of mergeable requests (per request if not batched)."""
    results = []
    groups = merging.group_compatible(requests) if batched else [[i] for i in range(len(requests))]
    for group in groups:
        members = [requests[i] for i in group]
        sizes = [merging.rows(r) for r in members]
        started = time.monotonic()
        try:
            raw = runtime.run(merging.merge(members))
            outputs = merging.split(raw, sizes) if batched else [raw]
            error = None
        except MaasError as exc:
            outputs, error = None, exc
        except Exception as exc:
            log.exception("model run failed")
            outputs, error = None, Internal(f"model execution failed: {exc}")
        results.append(
            _GroupResult(
                tuple(group),
                tuple(outputs) if outputs else None,
                error,
                sum(sizes),
                time.monotonic() - started,
            )
        )
    return results
