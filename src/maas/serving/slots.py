"""Execution slots shared by the versions of one model that serve at the same time (the arms of a split, a
rollout's stable and candidate, a shadow's target), so that serving two versions costs about what serving one
does.

Why: each version has its own batcher and sessions. Left alone, the arms of a 50/50 split on the tiny CNN (one
single-threaded session each) ran two batches at once, each of half the requests in flight: 24 rows per batch
fell to 8.5, the per-batch cost (thread hand-off, one onnxruntime run, the result's trip back to the loop) was
paid three times as often, and the two runs took the event loop's core: +13-25 % CPU per request at
concurrency 32. With a pool, batches in flight across the members are bounded by what one arm alone gets (its
instance count), and while one arm runs the others' queues fill, so batches stay as large as with no split.

Who runs when a slot frees: the member whose waiting requests have waited the most in total, estimated as
queued rows x the head's wait (requests are served in arrival order, so the head waited longest). Two equal
arms then alternate; a 10 % arm waits about sqrt(90/10) = 3 of the big arm's batches and runs them together,
instead of a batch of one or two rows after every big one. A shadow target (copies: a second inference nobody
waits for) scores `SHADOW_WEIGHT` of that, so it never takes a slot an arm is ready to use unless its copies
have waited far longer, and then runs them as one large batch.

Riders: when a slot is granted, every other arm with requests queued hands one batch to the same worker, to run
right after the granted one (`board`), and the slot frees after the last. A turn then costs one thread wake
and one trip back to the loop for all the arms, and the second run follows the first at once: a run made back
to back costs what it costs alone, while one made after a pause of 1-5 ms costs 1.2-3.7x as much on this
machine's cores (bench/cold_runs.py), which is most of what a split's extra batches cost. For the same
reason a turn is cut as soon as the arms' queues hold a full batch between them (`turn_full`): each arm alone
rarely fills one, and waiting out the queue delay left the worker idle before every turn, where a version
alone cuts the moment its batch is full.

The time a request spends ready to run while another member holds the slots is recorded on it (`slot_wait`):
rollouts judge an arm's latency without it (traffic_plane.py), so a candidate is not made to look slower than
stable by waiting for stable's runs, while the per-arm metrics keep the latency clients saw.

Only versions whose layout maas chose (serving/adaptive.py) join a pool: an explicit `instances` or
`intra_op_threads` is what was asked for that version alone, and it keeps its own sessions.
Measured figures: bench/README.md, section "Traffic".
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# How much a shadow target's waiting counts against an arm's (copies are never waited for by anyone).
SHADOW_WEIGHT = 1 / 16
# How long a slot stays free for the member that just released it when its own queue ranks first but is not
# yet ready to cut (it waits for the end of the turn, as a lone batcher does); past this the waiters get it.
RESERVE_S = 0.001


class Member(Protocol):
    """What a pool needs of a batcher (serving/batcher.py)."""

    slots: SlotPool | None

    @property
    def instances(self) -> int: ...
    def waiting(self) -> tuple[int, float] | None: ...  # (rows queued, when the head was queued), None: empty
    def run_now(self) -> None: ...  # a slot is granted: cut a batch now if there is one
    def ride(self, lane: Any, turn: Turn) -> bool: ...  # run a batch in another member's turn (its lane), if any
    def blocked(self, since: float, now: float) -> None: ...  # queued requests waited for a slot since `since`


@dataclass(eq=False)
class Turn:
    """One use of a slot: the batch of the member it was granted to, then the batches that ride along with it."""

    pool: SlotPool
    holder: Member
    batches: int = 1  # handed to the turn's lane and not yet done


class SlotPool:
    """The slots of one model's members; every call comes from the event loop."""

    def __init__(self, arms: Sequence[Member], shadows: Sequence[Member] = ()) -> None:
        self.arms = frozenset(arms)
        self.shadows = frozenset(shadows) - self.arms
        self.size = max(m.instances for m in self.arms)
        self.in_use = 0
        self._holders: Counter[Member] = Counter()
        self._waiting: dict[Member, float] = {}  # member -> since when it has been refused a slot
        self._granted: set[Member] = set()
        self._reserve: asyncio.TimerHandle | None = None

    @property
    def members(self) -> frozenset[Member]:
        return self.arms | self.shadows

    def alone(self) -> bool:
        """Whether the batch that just took a slot is the only one running (the solo session may take it)."""
        return self.in_use <= 1

    def refused(self, member: Member) -> bool:
        """Whether `member` is waiting for a slot that is not free (it is granted one with `run_now`)."""
        return member in self._waiting and (self.in_use >= self.size or self._reserve is not None)

    def take(self, member: Member) -> Turn | None:
        """A slot's turn if `member` may dispatch a batch now; if not (None), it waits and is granted one later."""
        if member in self._granted:
            self._granted.discard(member)
            return Turn(self, member)
        if self.in_use >= self.size:
            self._waiting.setdefault(member, time.monotonic())
            return None
        now = time.monotonic()
        mine = self._score(member, now)
        better = sum(1 for w in self._waiting if w is not member and self._score(w, now) > mine)
        if better:
            # Waiting members that rank above it go first (a slot kept for one that has not come back).
            self._waiting.setdefault(member, now)
            self.settle(but=member)
            if self.in_use >= self.size:
                return None
        self._hold(member, now)
        return Turn(self, member)

    def turn_full(self, rows: int) -> bool:
        """Whether the arms' queues hold `rows` rows between them: a turn (one batch and its riders) would then
        run as many rows as one version alone cuts at, so it need not wait for the queue delay."""
        total = 0
        for member in self.arms:
            queued = member.waiting()
            if queued is not None:
                total += queued[0]
                if total >= rows:
                    return True
        return False

    def board(self, turn: Turn, lane: Any) -> None:
        """The holder of `turn` has handed its batch to `lane`: every other arm with requests queued hands one
        batch to the same lane, to run right after it in the same worker; the slot frees after the last."""
        now = time.monotonic()
        riders = [m for m in self.arms if m is not turn.holder and m not in self._granted and m.waiting()]
        for member in sorted(riders, key=lambda m: self._score(m, now), reverse=True):
            since = self._waiting.pop(member, None)
            if since is not None:
                member.blocked(since, now)  # before its requests leave the queue
            if member.ride(lane, turn):
                turn.batches += 1
            elif since is not None:
                self._waiting[member] = now  # no instance of its own is idle: it waits on, counted from now

    def give(self, turn: Turn) -> None:
        """One batch of `turn` is done; after its last, the slot goes to the member that should run next."""
        turn.batches -= 1
        member = turn.holder
        if turn.batches or not self._holders[member]:
            return  # riders still run in the turn's lane, or its holder left the pool while it ran
        self._holders[member] -= 1
        self.in_use -= 1
        if not self._waiting:
            return
        now = time.monotonic()
        if self._outranked_by(member, now) is None:
            # Its own queue (filled while it ran) ranks first: keep the slot for it until its turn ends.
            if self._reserve is None:
                self._reserve = asyncio.get_running_loop().call_later(RESERVE_S, self._on_reserve)
            return
        self.settle()

    def settle(self, but: Member | None = None) -> None:
        """Grant free slots to the waiting members (`but` that one, which is asking itself), best first."""
        now = time.monotonic()
        while self.in_use < self.size and (others := [m for m in self._waiting if m is not but]):
            best = max(others, key=lambda m: self._score(m, now))
            self._hold(best, now)
            self._granted.add(best)
            best.run_now()
            if best in self._granted:  # it had nothing to run after all (its callers gave up)
                self._granted.discard(best)
                self._holders[best] -= 1
                self.in_use -= 1

    def detach(self, member: Member) -> None:
        """Take `member` out (the split changed, or it unloads); it runs on its own sessions from now."""
        self.in_use -= self._holders.pop(member, 0)
        was_waiting = self._waiting.pop(member, None) is not None
        self._granted.discard(member)
        member.slots = None
        if was_waiting:
            member.run_now()  # refused a slot, it has no timer of its own armed
        self.settle()

    # --- ranking ----------------------------------------------------------------------------------------
    def _score(self, member: Member, now: float) -> float:
        queued = member.waiting()
        if queued is None:
            return -1.0
        rows, since = queued
        score = rows * max(now - since, 1e-9)
        return score * SHADOW_WEIGHT if member in self.shadows else score

    def _outranked_by(self, member: Member, now: float) -> Member | None:
        """The best waiting member if it ranks above `member`'s own queue, else None."""
        best = max(self._waiting, key=lambda m: self._score(m, now))
        return best if self._score(best, now) > self._score(member, now) else None

    def _hold(self, member: Member, now: float) -> None:
        since = self._waiting.pop(member, None)
        if since is not None:
            member.blocked(since, now)
        self._holders[member] += 1
        self.in_use += 1

    def _on_reserve(self) -> None:
        self._reserve = None
        self.settle()


class SharedSlots:
    """The pools of a repository's models: one per model serving several versions at once."""

    def __init__(self) -> None:
        self._pools: dict[str, SlotPool] = {}

    def models(self) -> set[str]:
        return set(self._pools)

    def pool(self, model: str) -> SlotPool | None:
        return self._pools.get(model)

    def apply(self, model: str, arms: Sequence[Member], shadows: Sequence[Member] = ()) -> None:
        """Make `model`'s pool hold exactly these members (none when fewer than two, or no arm)."""
        old = self._pools.get(model)
        wanted = set(arms) | set(shadows)
        if old is not None and old.arms == frozenset(arms) and old.shadows == frozenset(shadows) - old.arms:
            return
        if old is not None:
            del self._pools[model]
            for member in old.members:
                old.detach(member)
        if not arms or len(wanted) < 2:
            return
        pool = self._pools[model] = SlotPool(arms, shadows)
        for member in pool.members:
            if member.slots is not None:  # in another model's pool: cannot happen, a batcher is one version's
                member.slots.detach(member)
            member.slots = pool

    def forget(self, member: Member) -> None:
        """`member` unloads: take it out of its pool."""
        pool = member.slots
        if pool is not None:
            pool.detach(member)
