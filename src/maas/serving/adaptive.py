"""How many sessions, with how many threads, a version gets when its config leaves `instances` and
`intra_op_threads` unset: chosen at load by timing the model, so a lone request and a full queue are both served
close to what onnxruntime alone reaches on the machine.

The trade-off: a request at a time runs fastest on one session using every core (a ResNet-18 on 2 cores: 8.8 ms
against 17 ms on one thread), while a full queue is served fastest by one single-threaded session per core
(parallel runs scale better than the threads inside one run). One layout cannot do both, so a compute-bound
version gets both: `cores` single-threaded sessions for throughput, plus one *solo* session with all the cores'
threads that the batcher uses only when a batch would otherwise run alone (nothing else queued or running; see
`Batcher._runtime_for`). Under load the solo session sits idle and the queue is shared as before; after an idle
spell the first request is served at single-request speed at once, with no mode switch to learn.

Which versions: the batch-1 run time of the version's first session (one thread) on a synthetic input decides.
Below `HEAVY_S` the request's own overhead (parsing, the thread hand-off, ~0.1-0.3 ms) outweighs anything
threads could save, and more sessions only split small batches and take the event loop's core: such a version
keeps one single-threaded session (the tiny CNN's best layout, measured). Above it the solo session is built
and timed against a single-threaded session, runs alternating (on a shared machine a busy spell then slows
both, instead of deciding alone: timed one after the other, a server started under other work dropped the
solo session of the ResNet-18 every time), and kept only when it is at least `SOLO_GAIN` times faster. An
explicit `instances` or `intra_op_threads` (version config or `--set`) is never second-guessed, and neither
is a GPU session or another runtime.

Batches of a compute-bound version: a full batch is worth its queue delay only when a row costs less in it than
alone. On this 2-core AMD EPYC the ResNet-18 ran 53 rows/s on two single-threaded sessions at batch 1 against
45 at batch 8 (cache pressure), so a server cutting batches of 8 under load stayed at 80-86 % of what
onnxruntime reaches. A compute-bound version whose config names no preferred batch sizes is therefore timed
at batch 1 against a batch of up to `PROBE_ROWS` rows, alternating; unless a row is `BATCH_GAIN` times cheaper
in the batch, the batcher prefers batches of one row (`preferred_batch_sizes` (1,), as Triton's dynamic batcher
reads it: a request is cut alone at once, every idle session takes the next one, and a request that carries
several rows still runs whole).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace

import numpy as np

from maas.serving.options import BatchingPolicy
from maas.serving.runtime import OnnxRuntime, Runtime
from maas.types import TensorSpec, numpy_dtype

log = logging.getLogger(__name__)

HEAVY_S = 0.002  # batch-1 run time from which a version counts as compute-bound
SOLO_GAIN = 1.25  # how much faster the all-threads session must be to be worth its memory
MAX_INSTANCES = 8  # more single-threaded copies than this cost memory for little gain; threads take the rest
TIMED_RUNS = 3
PAIRED_RUNS = 5  # runs of each session when the solo one is timed against a single-threaded one
BATCH_GAIN = 1.1  # how much cheaper a row must be in a full batch than alone for full batches to be preferred
PROBE_ROWS = 8  # the largest batch timed against batch 1 (a larger one takes its rows' time again at each run)
PROBE_RUNS = 2  # timed runs of each size, alternating, after one untimed run of each
PROBE_BUDGET_S = 1.0  # a slower model is probed with fewer rows (never fewer than 2)


@dataclass(frozen=True)
class Layout:
    policy: BatchingPolicy
    solo_threads: int = 0  # 0: no solo session
    single_s: float | None = None  # the batch-1 run time on one thread, when measured


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def choose(first: Runtime, policy: BatchingPolicy, inputs: tuple[TensorSpec, ...], n_cores: int) -> Layout:
    """The layout of an adaptive version, from timing `first` (a single-threaded session of it)."""
    if not policy.adaptive or n_cores < 2 or not isinstance(first, OnnxRuntime):
        return Layout(policy)  # the thread trade-off above is onnxruntime's; other runtimes keep the defaults
    t1 = time_batch1(first, inputs)
    if t1 is None or t1 < HEAVY_S:
        return Layout(policy, 0, t1)
    instances = min(n_cores, MAX_INSTANCES)
    threads = max(1, n_cores // instances)
    chosen = replace(policy, instances=instances, intra_op_threads=threads)
    if not batching_pays(first, policy, inputs, t1):
        chosen = replace(chosen, preferred_batch_sizes=(1,))
    return Layout(chosen, n_cores, t1)


def batching_pays(first: Runtime, policy: BatchingPolicy, inputs: tuple[TensorSpec, ...], t1: float) -> bool:
    """Whether a row of this compute-bound version runs `BATCH_GAIN` times cheaper in a batch than alone; True
    (batch as configured) when batches are not the batcher's to choose or the batch cannot be timed."""
    if policy.max_batch_size < 2 or policy.preferred_batch_sizes:
        return True
    affordable = int(PROBE_BUDGET_S / ((PROBE_RUNS + 1) * t1))
    rows = min(policy.max_batch_size, PROBE_ROWS, max(2, affordable))
    one, batch = time_rows_alternately(first, inputs, rows)
    pays = one is None or batch is None or batch / rows * BATCH_GAIN <= one
    log.info("batch-1 run %s, %d rows %s (%s a row): %s", _ms(one), rows, _ms(batch),
             _ms(batch / rows if batch is not None else None),
             "batching as configured" if pays else "preferring batches of one row")
    return pays


def time_rows_alternately(runtime: Runtime, inputs: tuple[TensorSpec, ...], rows: int
                          ) -> tuple[float | None, float | None]:
    """The best run of one row and of `rows` rows on `runtime` over `PROBE_RUNS` runs each, in turn."""
    one, many = synthetic(inputs), synthetic(inputs, rows)
    if one is None or many is None:
        return None, None
    return _best_in_turn((runtime, one), (runtime, many), PROBE_RUNS)


def keep_solo(solo: Runtime, instance: Runtime, layout: Layout, inputs: tuple[TensorSpec, ...]) -> bool:
    """Whether the all-threads session earns its place against `instance` (one of the layout's sessions)."""
    one, t = time_alternately(instance, solo, inputs)
    keep = t is not None and one is not None and t * SOLO_GAIN <= one
    log.info("batch-1 run %s on %d thread(s), %s on %d: %s the solo session", _ms(one),
             layout.policy.intra_op_threads, _ms(t), layout.solo_threads, "keeping" if keep else "dropping")
    return keep


def _ms(seconds: float | None) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds is not None else "failed"


def time_alternately(a: Runtime, b: Runtime, inputs: tuple[TensorSpec, ...]) -> tuple[float | None, float | None]:
    """The best batch-1 run of `a` and of `b` over `PAIRED_RUNS` runs each, one of each in turn."""
    sample = synthetic(inputs)
    if sample is None:
        return None, None
    return _best_in_turn((a, sample), (b, sample), PAIRED_RUNS)


Cell = tuple[Runtime, dict[str, np.ndarray]]  # a session and the sample it is timed on


def _best_in_turn(a: Cell, b: Cell, runs: int) -> tuple[float | None, float | None]:
    """The best of `runs` timed runs of cell `a` and of cell `b`, one of each in turn after one untimed run of
    each, so that a busy spell of the machine slows both alike; (None, None) when a run fails."""
    best = [float("inf"), float("inf")]
    try:
        for runtime, sample in (a, b):
            runtime.run(sample)
        for _ in range(runs):
            for i, (runtime, sample) in enumerate((a, b)):
                started = time.perf_counter()
                runtime.run(sample)
                best[i] = min(best[i], time.perf_counter() - started)
    except Exception as exc:
        log.debug("timing runs failed: %s", exc)
        return None, None
    return best[0], best[1]


def time_batch1(runtime: Runtime, inputs: tuple[TensorSpec, ...]) -> float | None:
    """The best of a few batch-1 runs on zeros, after one untimed run; None when the model refuses zeros."""
    sample = synthetic(inputs)
    if sample is None:
        return None
    try:
        runtime.run(sample)
        best = float("inf")
        for _ in range(TIMED_RUNS):
            started = time.perf_counter()
            runtime.run(sample)
            best = min(best, time.perf_counter() - started)
    except Exception as exc:  # a model that cannot take zeros keeps the default layout
        log.debug("timing batch-1 runs failed: %s", exc)
        return None
    return best


def synthetic(inputs: tuple[TensorSpec, ...], rows: int = 1) -> dict[str, np.ndarray] | None:
    """Zeros of every input, `rows` rows on the batch axis and 1 on any other dynamic axis."""
    if any(s.datatype == "BYTES" for s in inputs):
        return None
    return {s.name: np.zeros(tuple((rows if i == 0 else 1) if d < 0 else d for i, d in enumerate(s.shape)),
                             dtype=numpy_dtype(s.datatype)) for s in inputs}
