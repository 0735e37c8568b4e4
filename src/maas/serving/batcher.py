"""Dynamic batching for one loaded model version: a bounded queue, event-driven, cut by size or delay.

Everything runs in callbacks on the event loop, with no task per batch: a request arriving, an instance
finishing and the delay timer firing each call `_pump`, which hands batches to idle instances. A batch is cut
when the queue holds `max_batch_size` rows (or the largest preferred size), or when the oldest request has
waited `max_queue_delay_us`. While recent batches held one request each, waiting for company that is not
coming would only add latency (a lone client would pay the whole delay on every call), so the batch is cut as
soon as the requests read in the same turn of the event loop have joined it; a turn that brings several
requests puts the delay back in force. With several instances idle, each gets an equal share of the queue.
Batches run in the shared thread pool, never on the event loop; tensor merging and splitting live in
`merging.py`.

Each instance has a lane (`_Lane`): the batches handed to it, run one after another by one worker thread.
While every instance is busy and the queue already holds a full batch, that batch is handed to the busy
instance whose run started first, so the instance starts it as soon as its current run ends, in the same worker
thread, instead of idling while the result travels to the loop and the next batch travels back (a thread
wake-up, a loop turn and two GIL hand-offs per run). Only a full batch goes ahead this way: it would be cut as
it is whenever an instance freed, so nothing waits for company that could have joined it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from maas.errors import DeadlineExceeded, Internal, MaasError, ResourceExhausted, Unavailable
from maas.serving import merging
from maas.serving.merging import Tensors
from maas.serving.options import BatchingPolicy
from maas.serving.runtime import Runtime

if TYPE_CHECKING:
    from maas.serving.slots import SlotPool, Turn

log = logging.getLogger(__name__)

# Weight of the newest batch in the running mean of requests per batch (a few batches of memory).
_BATCH_WEIGHT = 0.25
# Below this many requests per batch on average, waiting for company has not been finding any.
_WORTH_WAITING = 1.5
# Weight of the newest batch in the running mean of a batch's service time (dispatch to result).
_SERVICE_WEIGHT = 0.2


class BatchObserver(Protocol):
    """Where the batcher reports what it measures (metrics); called on the event loop."""

    def queue_depth(self, depth: int) -> None: ...
    def queued(self, seconds: float) -> None: ...
    def computed(self, rows: int, seconds: float, requests: int = 1) -> None: ...


class _NoObserver:
    def queue_depth(self, depth: int) -> None:
        pass

    def queued(self, seconds: float) -> None:
        pass

    def computed(self, rows: int, seconds: float, requests: int = 1) -> None:
        pass


@dataclass(eq=False)
class _Pending:
    inputs: Tensors
    rows: int
    future: asyncio.Future[Tensors]
    enqueued: float = field(default_factory=time.monotonic)
    dispatched: float = 0.0  # when its batch went to an instance
    batch_rows: int = 0  # filled in when the batcher is traced: the rows of its batch, the model run's
    compute_s: float = 0.0  # duration and when the batch's result was back on the loop
    done: float = 0.0
    slot_wait: float = 0.0  # ready to run, while another version of the model held its slots (slots.py)


# The caller's own queue entry after `submit` returns (same task), so traces can show its waits; set only
# while a batcher is `traced` or shares its model's slots (rollouts judge latency without `slot_wait`).
last_pending: contextvars.ContextVar[_Pending | None] = contextvars.ContextVar("maas_last_pending", default=None)


@dataclass(frozen=True)
class _GroupResult:
    """What one compatible group of a batch produced, computed in a worker thread."""

    members: tuple[int, ...]
    outputs: tuple[Tensors, ...] | None
    error: MaasError | None
    rows: int
    seconds: float


@dataclass(eq=False)
class _Work:
    """One batch handed to a lane, the instance that runs it, and where its result goes (a callback run in the
    worker thread). The instance is the lane's own, or that of another version riding in a turn (slots.py)."""

    runtime: Runtime
    requests: list[Tensors]
    batched: bool
    report: Callable[[list[_GroupResult] | None, BaseException | None, float], None]  # results, error, started


class _Lane:
    """The batches handed to one instance, run in order by at most one worker thread at a time (a runtime is
    called from one thread at a time); the loop appends, the worker takes, both under `_lock`."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._lock = threading.Lock()
        self._work: deque[_Work] = deque()
        self._draining = False

    def put(self, work: _Work) -> None:
        """Queue `work`, starting a worker when none is draining the lane; raises when the pool refuses."""
        with self._lock:
            self._work.append(work)
            if self._draining:
                return
            self._draining = True
        try:
            self._executor.submit(self._drain)
        except BaseException:
            with self._lock:
                self._work.remove(work)
                self._draining = False
            raise

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._work:
                    self._draining = False
                    return
                work = self._work.popleft()
            started = time.monotonic()
            try:
                results, exc = _compute(work.runtime, work.requests, work.batched), None
            except BaseException as error:  # _compute catches model errors; this is anything else
                results, exc = None, error
            work.report(results, exc, started)


class Batcher:
    """Queue + scheduler for one version; `submit` returns exactly the caller's rows of every output."""

    def __init__(
        self,
        label: str,
        policy: BatchingPolicy,
        runtimes: Sequence[Runtime],
        executor: Executor,
        observer: BatchObserver | None = None,
        *,
        solo: Runtime | None = None,
    ) -> None:
        if not runtimes:
            raise Internal(f"{label}: a batcher needs at least one runtime instance")
        self.label = label
        self.policy = policy
        self._runtimes = tuple(runtimes)
        self._solo = solo  # all cores' threads: runs a batch that would otherwise run alone (adaptive.py)
        self._solo_idle = solo is not None
        self._executor = executor
        self._observer = observer or _NoObserver()
        self._queue: deque[_Pending] = deque()
        self._queue_rows = 0  # rows in `_queue`, kept as it changes (admission asks on every request)
        self._idle: list[Runtime] = []
        self._lanes = {r: _Lane(executor) for r in (*self._runtimes, *((solo,) if solo is not None else ()))}
        self._in_lane: dict[Runtime, list[float]] = {}  # instance -> when each batch in its lane was handed over
        self._riding: set[Runtime] = set()  # instances whose batch runs in another version's lane (slots.py)
        self._running: set[asyncio.Future[None]] = set()
        self._timer: asyncio.Handle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._delay_s = policy.max_queue_delay_us / 1e6
        self._target = max(policy.preferred_batch_sizes, default=policy.max_batch_size)
        self._mean_batch = 1.0  # requests per batch, recently
        self._head_due = False  # the request at the head of the queue has waited long enough
        self._closed = False
        self.traced = False  # OpenTelemetry is on: keep per-request timings for the spans
        self._service_s = 0.0  # recent time from a batch's start to its result (0: none measured yet)
        self.slots: SlotPool | None = None  # set while other versions of the model share its slots (slots.py)

    @property
    def depth(self) -> int:
        return len(self._queue)

    @property
    def instances(self) -> int:
        return len(self._runtimes)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._idle = list(self._runtimes)

    async def submit(self, inputs: Tensors, timeout_s: float) -> Tensors:
        if self._closed:
            raise Unavailable(f"{self.label} is shutting down")
        if len(self._queue) >= self.policy.max_queue_size:
            raise ResourceExhausted(
                f"{self.label}: the queue is full ({self.policy.max_queue_size} requests); retry later"
            )
        rows = merging.rows(inputs)
        wait = self.expected_wait(rows)
        bound = min(timeout_s, self.policy.max_queue_wait_s)
        if wait > bound:
            why = "the request's deadline" if timeout_s < self.policy.max_queue_wait_s else "the maximum queue wait"
            raise ResourceExhausted(
                f"{self.label}: overloaded, the expected wait of {wait * 1e3:.0f} ms exceeds {why} "
                f"({bound * 1e3:.0f} ms); retry later"
            )
        loop = self._loop or asyncio.get_running_loop()
        pending = _Pending(inputs, rows, loop.create_future())
        if self.traced or self.slots is not None:
            last_pending.set(pending)
        self._queue.append(pending)
        self._queue_rows += rows
        self._observer.queue_depth(len(self._queue))
        self._pump()
        expiry = loop.call_later(timeout_s, _expire, pending.future, self.label, timeout_s)
        try:
            return await pending.future  # a cancelled caller cancels the future: the batch skips it
        finally:
            expiry.cancel()

    def expected_wait(self, rows: int = 1) -> float:
        """Seconds a request of `rows` rows would wait before its batch starts: the batches queued ahead of
        it (plus the ones running, when no instance is idle) spread over the instances, times the recent
        service time of a batch; never less than the queue's head has waited already. Zero until a batch
        has been measured."""
        if self._service_s == 0.0:
            return 0.0
        capacity = max(self._target, 1)  # the rows a batch is cut at under load
        queued = self._queue_rows + rows
        batches_ahead = -(-queued // capacity) - 1  # the request's own batch is not waited for
        if not self._idle:
            batches_ahead += len(self._running)
        rounds = -(-batches_ahead // len(self._runtimes))
        wait = rounds * self._service_s
        if self._queue:
            # The head's wait so far: under a burst the event loop, busy reading new requests, delays every
            # turn a queued request needs (cut, result, resume), which a batch's service time does not show.
            wait = max(wait, time.monotonic() - self._queue[0].enqueued)
        return wait

    def overloaded(self, unread_s: float = 0.0) -> str | None:
        """Why a one-row request would be refused right now (queue full, or expected to wait longer than the
        maximum queue wait), or None; the transports ask before reading a body, so shedding stays cheap.
        `unread_s`: how long the request already waited unread in the server's socket buffer (a burst that
        the event loop cannot read at once waits there), which counts against the maximum queue wait too, but
        only with work ahead of it: a request that finds an idle instance and an empty queue starts at once, so
        refusing it for a late read (a stalled loop on a busy machine) would waste the wait it already paid."""
        if len(self._queue) >= self.policy.max_queue_size:
            return f"{self.label}: the queue is full ({self.policy.max_queue_size} requests); retry later"
        wait = self.expected_wait(1)
        if not self._queue and self._idle:
            unread_s = 0.0
        if wait + unread_s > self.policy.max_queue_wait_s:
            already = f"{unread_s * 1e3:.0f} ms unread plus " if unread_s else ""
            return (f"{self.label}: overloaded, {already}the expected wait of {wait * 1e3:.0f} ms exceeds the "
                    f"maximum queue wait ({self.policy.max_queue_wait_s * 1e3:.0f} ms); retry later")
        return None

    async def stop(self, grace_s: float) -> None:
        """Refuse new work, let queued and running batches finish for up to `grace_s`, then fail the rest."""
        self._closed = True
        try:
            await asyncio.wait_for(self._drain(), grace_s)
        except TimeoutError:
            log.warning(
                "%s: %d requests still queued after %.1f s; failing them", self.label, self.depth, grace_s
            )
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._queue:
            pending = self._queue.popleft()
            self._queue_rows -= pending.rows
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
    def _pump(self) -> None:
        """Hand batches to idle instances while the queue has work that should not wait any longer."""
        if self.slots is not None and self.slots.refused(self):
            return  # waiting for a slot of the model's pool, which calls run_now: no need to look at the queue
        while self._idle and self._queue:
            self._drop_abandoned()
            if not self._queue:
                break
            if self.policy.max_batch_size and not self._ready_to_cut():
                if self._timer is None and self._loop is not None:
                    self._timer = self._arm(self._loop)
                break
            turn = None
            if self.slots is not None and (turn := self.slots.take(self)) is None:
                break  # another version of the model holds the slots; one is granted back (run_now)
            batch = self._take(self._share())
            self._head_due = False
            runtime = self._runtime_for()
            self._dispatch(runtime, batch, turn=turn)
            if turn is not None:
                turn.pool.board(turn, self._lanes[runtime])
        if not self._idle and self._queue and self.slots is None:
            self._chain_full_batches()
        if self._timer is not None and (not self._queue or not self._idle):
            self._timer.cancel()  # re-armed for the new oldest request when an instance frees
            self._timer = None

    def _chain_full_batches(self) -> None:
        """Hand full batches to busy instances with nothing after their current run, the one whose run started
        first (it frees first) first. A version sharing its model's slots never chains: slots.py decides."""
        if not self._full_batch_queued():  # checked first: this runs on every arrival under load
            return
        alone = [r for r in self._runtimes if len(self._in_lane.get(r, ())) == 1 and r not in self._riding]
        for runtime in sorted(alone, key=lambda r: self._in_lane[r][0]):
            self._drop_abandoned()
            if not self._full_batch_queued():
                return
            self._dispatch(runtime, self._take(self.policy.max_batch_size))

    def _full_batch_queued(self) -> bool:
        limit = self.policy.max_batch_size
        return bool(self._queue) and (not limit or self._queued_rows(self._target) >= self._target)

    def _take(self, limit: int) -> list[_Pending]:
        """Cut the next batch off the queue (within `limit` rows; one request when the version is unbatched)."""
        batch = self._cut(limit) if self.policy.max_batch_size else [self._queue.popleft()]
        self._queue_rows -= sum(p.rows for p in batch)
        self._mean_batch += (len(batch) - self._mean_batch) * _BATCH_WEIGHT
        self._observer.queue_depth(len(self._queue))
        return batch

    def _runtime_for(self) -> Runtime:
        """The instance for the batch just cut: the solo session when that batch runs alone (nothing left in
        the queue, nothing running), since one run on every core is then the fastest answer; else an idle
        single-threaded instance, as a queue is served fastest by parallel runs. Under load the solo session
        stays idle, and a request arriving while it runs goes to an instance as usual."""
        if (self._solo_idle and not self._queue and len(self._idle) == len(self._runtimes)
                and (self.slots is None or self.slots.alone())):
            self._solo_idle = False
            assert self._solo is not None
            return self._solo
        return self._idle.pop()

    # --- a shared pool's view (slots.py) ------------------------------------------------------------------
    def waiting(self) -> tuple[int, float] | None:
        return (self._queue_rows, self._queue[0].enqueued) if self._queue else None

    def run_now(self) -> None:
        self._head_due = True
        self._pump()

    def ride(self, lane: _Lane, turn: Turn) -> bool:
        """Another version of the model runs a batch in `lane` in a turn of the shared slots: cut one of ours now
        to run right after it in the same worker, on an idle instance of ours; False when there is none, or no
        request is queued."""
        if self._closed or not self._idle:
            return False
        self._drop_abandoned()
        if not self._queue:
            return False
        self._head_due = False
        self._dispatch(self._idle.pop(), self._take(self.policy.max_batch_size), lane=lane, turn=turn)
        if not self._queue and self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return True

    def blocked(self, since: float, now: float) -> None:
        for p in self._queue:
            p.slot_wait += now - max(since, p.enqueued)

    def _ready_to_cut(self) -> bool:
        """Whether the queue should be cut now: its head is due, a full batch is queued, or (sharing the model's
        slots) the arms' queues hold a full batch between them, which one turn runs (slots.py)."""
        return (self._head_due or self._queued_rows(self._target) >= self._target
                or (self.slots is not None and self in self.slots.arms and self.slots.turn_full(self._target)))

    def _arm(self, loop: asyncio.AbstractEventLoop) -> asyncio.Handle:
        """When to look again at a batch that is not full: at the delay while recent batches found company,
        else once the requests already read in this turn of the event loop have joined."""
        if self._mean_batch >= _WORTH_WAITING:
            return loop.call_at(self._queue[0].enqueued + self._delay_s, self._on_timer)
        return loop.call_soon(self._on_turn)

    def _on_timer(self) -> None:
        # uvloop's timers count whole milliseconds, so a shorter delay can fire early: then _pump re-arms it.
        # Once due, the cut still waits for the end of this turn, so requests the loop has already read (and
        # is about to queue) are not left behind by a busy loop's late timer.
        self._timer = None
        if self._queue and time.monotonic() >= self._queue[0].enqueued + self._delay_s and self._loop is not None:
            self._timer = self._loop.call_soon(self._on_turn)
        else:
            self._pump()

    def _on_turn(self) -> None:
        self._timer = None
        self._head_due = True
        self._pump()

    def _drop_abandoned(self) -> None:
        """Forget requests whose caller gave up (timeout, disconnect) before they were batched."""
        if any(p.future.done() for p in self._queue):
            self._queue = deque(p for p in self._queue if not p.future.done())
            self._queue_rows = sum(p.rows for p in self._queue)

    def _queued_rows(self, enough: int) -> int:
        total = 0
        for p in self._queue:
            total += p.rows
            if total >= enough:
                break
        return total

    def _share(self) -> int:
        """The rows one batch may take: `max_batch_size`, or less when several instances are idle, so the queue
        is spread over them (8 queued rows on 2 idle single-threaded sessions run as 4 + 4, not 8 on one while
        the other waits: measured 30 req/s against 55 on the ResNet at concurrency 8)."""
        limit = self.policy.max_batch_size
        idle = len(self._idle)
        if idle < 2:
            return limit
        return min(limit, -(-self._queued_rows(limit * idle) // idle))

    def _cut(self, limit: int) -> list[_Pending]:
        """The longest prefix within `limit` rows, cut to a preferred size when one is reachable."""
        preferred = self.policy.preferred_batch_sizes
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
    def _dispatch(self, runtime: Runtime, batch: list[_Pending], lane: _Lane | None = None,
                  turn: Turn | None = None) -> None:
        """Hand `batch` to `runtime`'s lane (or `lane`: another version's, in a turn of the shared slots); the
        result comes back to the loop as one callback."""
        loop = self._loop
        assert loop is not None
        handed = time.monotonic()
        done: asyncio.Future[None] = loop.create_future()
        self._running.add(done)
        self._in_lane.setdefault(runtime, []).append(handed)
        if lane is not None:
            self._riding.add(runtime)  # never chained behind: its own lane is not the one running it

        def back_on_loop(results: list[_GroupResult] | None, exc: BaseException | None, started: float) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed: nobody is waiting
                loop.call_soon_threadsafe(self._finish, runtime, batch, done, results, exc, started, turn)

        work = _Work(runtime, [p.inputs for p in batch], self.policy.max_batch_size > 0, back_on_loop)
        try:
            (lane or self._lanes[runtime]).put(work)
        except Exception as exc:  # the pool refused work (shut down): no caller may hang
            # not recursively: _finish pumps
            loop.call_soon(self._finish, runtime, batch, done, None, exc, handed, turn)

    def _finish(
        self,
        runtime: Runtime,
        batch: list[_Pending],
        done: asyncio.Future[None],
        results: list[_GroupResult] | None,
        exc: BaseException | None,
        started: float,
        turn: Turn | None = None,
    ) -> None:
        """On the loop: answer the batch's callers. `started`: when the worker began the batch (a chained batch
        waited in its lane until then, which counts as queueing, not as service)."""
        for p in batch:
            self._observer.queued(started - p.enqueued)
            p.dispatched = started
        try:
            if results is None:
                log.error("%s: batch execution failed: %s", self.label, exc)
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(Internal(f"batch execution failed: {exc}"))
                return
            if self.traced:
                now = time.monotonic()
                for result in results:
                    for member in result.members:
                        batch[member].batch_rows, batch[member].compute_s = result.rows, result.seconds
                        batch[member].done = now
            for result in results:
                self._observer.computed(result.rows, result.seconds, len(result.members))
                for position, member in enumerate(result.members):
                    future = batch[member].future
                    if future.done():
                        continue
                    if result.error is not None:
                        future.set_exception(result.error)
                    else:
                        assert result.outputs is not None
                        future.set_result(result.outputs[position])
        finally:
            if results is not None and runtime is not self._solo:  # admission's view
                took = time.monotonic() - started
                self._service_s = took if self._service_s == 0.0 else (
                    self._service_s + (took - self._service_s) * _SERVICE_WEIGHT)
            self._running.discard(done)
            done.set_result(None)
            handed = self._in_lane[runtime]
            handed.pop(0)
            self._riding.discard(runtime)
            if not handed:  # else a chained batch runs on it now
                if runtime is self._solo:
                    self._solo_idle = True
                else:
                    self._idle.append(runtime)
            if turn is not None:
                turn.pool.give(turn)
            self._pump()


def _expire(future: asyncio.Future[Tensors], label: str, timeout_s: float) -> None:
    if not future.done():
        future.set_exception(DeadlineExceeded(f"{label}: no result within {timeout_s:g} s"))


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
