"""The continuous-batching engine (as vLLM's EngineClient: a request in, an async stream of outputs back).

One loop per model version. Between two decode steps it drops rows whose client left, timed out or finished,
and admits waiting requests in arrival order (so none starves) while the running ones fit the KV-cache budget:
each admitted request reserves prompt + max_tokens cache slots, so a running sequence never runs out. Requests
past the waiting room's size are refused at once (429). Forward passes run on one worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from maas.errors import DeadlineExceeded, InvalidParameter, MaasError, ResourceExhausted, Unavailable
from maas.llm.detokenize import TextStream
from maas.llm.requests import GenerationOutput, SamplingParams, TokenLogprob
from maas.llm.runtime import TextRuntime
from maas.llm.sampling import choose, make_generator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineOptions:
    max_running: int = 16  # rows of one decode step
    max_waiting: int = 64  # requests queued beyond those; past this: 429
    kv_cache_tokens: int = 32768  # KV-cache slots reserved over all running sequences
    default_timeout_s: float = 300.0


class EngineObserver(Protocol):
    def first_token(self, seconds: float) -> None: ...

    def next_token(self, seconds: float) -> None: ...

    def finished(self, seconds: float, prompt_tokens: int, completion_tokens: int) -> None: ...

    def occupancy(self, running: int, waiting: int, kv_used: float) -> None: ...


@dataclass(eq=False)
class _Sequence:
    prompt: list[int]
    params: SamplingParams
    stream: TextStream
    deadline: float
    generator: Any
    outputs: asyncio.Queue[GenerationOutput | MaasError] = field(default_factory=asyncio.Queue)
    arrived: float = field(default_factory=time.perf_counter)
    last_at: float | None = None
    last_token: int = -1
    generated: int = 0
    done: bool = False  # finished, cancelled or failed: its slot is free, its row goes at the next step

    @property
    def reserve(self) -> int:
        return len(self.prompt) + self.params.max_tokens


_CANCELLED = GenerationOutput("", finish_reason="cancelled")  # ends a cancelled stream; never yielded


class RequestHandle:
    """One submitted request: iterate `stream()` for its outputs; `cancel()` (or closing the stream) frees its
    slot before the next decode step."""

    def __init__(self, engine: ContinuousBatchingEngine, seq: _Sequence) -> None:
        self._engine = engine
        self._seq = seq

    @property
    def prompt_tokens(self) -> int:
        return len(self._seq.prompt)

    async def stream(self) -> AsyncIterator[GenerationOutput]:
        try:
            while True:
                item = await self._seq.outputs.get()
                if item is _CANCELLED:
                    return
                if isinstance(item, MaasError):
                    raise item
                yield item
                if item.finish_reason is not None:
                    return
        finally:
            self.cancel()

    def cancel(self) -> None:
        if not self._seq.done:
            self._engine._release(self._seq)
            self._seq.outputs.put_nowait(_CANCELLED)  # wakes a reader still waiting (another task's stream)


class ContinuousBatchingEngine:
    def __init__(self, runtime: TextRuntime, options: EngineOptions | None = None,
                 observer: EngineObserver | None = None) -> None:
        self.runtime = runtime
        self.options = options or EngineOptions()
        self._observer = observer
        self._waiting: deque[_Sequence] = deque()
        self._running: list[_Sequence] = []  # rows of `_batch`, in order (touched by the worker thread only)
        self._batch: Any = None
        self._reserved = 0
        self._admitted: set[_Sequence] = set()
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llm-{runtime.name or 'engine'}")
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # --- the client side ----------------------------------------------------------------------------------
    def submit(self, prompt: list[int], params: SamplingParams) -> RequestHandle:
        """Queue a request; raises at once for a prompt over the context or a full waiting room."""
        if self._closed:
            raise Unavailable(f"model {self.runtime.name} is shutting down")
        if not prompt:
            raise InvalidParameter("the prompt is empty", "prompt")
        context = self.runtime.context_length
        if len(prompt) >= context:
            raise InvalidParameter(
                f"the prompt has {len(prompt)} tokens; this model's context is {context} tokens", "messages")
        if len(prompt) + params.max_tokens > context:
            raise InvalidParameter(
                f"max_tokens {params.max_tokens} + the prompt's {len(prompt)} tokens exceed this model's context "
                f"of {context} tokens", "max_tokens")
        if len(prompt) + params.max_tokens > self.options.kv_cache_tokens:
            raise InvalidParameter(
                f"the prompt and max_tokens need {len(prompt) + params.max_tokens} KV-cache slots; the server has "
                f"{self.options.kv_cache_tokens}", "max_tokens")
        if len(self._waiting) + len(self._admitted) >= self.options.max_running + self.options.max_waiting:
            raise ResourceExhausted(f"model {self.runtime.name} is saturated ({len(self._admitted)} running, "
                                    f"{len(self._waiting)} waiting); retry later")
        timeout = params.timeout_s or self.options.default_timeout_s
        seq = _Sequence(prompt, params, TextStream(self.runtime.decode, params.stop),
                        time.monotonic() + timeout, make_generator(params))
        self._waiting.append(seq)
        self._ensure_loop()
        self._report()
        self._wake.set()
        return RequestHandle(self, seq)

    def _release(self, seq: _Sequence) -> None:
        """Free a sequence's slot now (finished, cancelled or timed out); its cache row goes at the next step."""
        if seq.done:
            return
        seq.done = True
        if seq in self._admitted:
            self._admitted.discard(seq)
            self._reserved -= seq.reserve
        else:
            with contextlib.suppress(ValueError):
                self._waiting.remove(seq)
        self._report()
        self._wake.set()

    def stats(self) -> dict[str, Any]:
        return {"running": len(self._admitted), "waiting": len(self._waiting),
                "kv_cache_reserved": self._reserved, "kv_cache_tokens": self.options.kv_cache_tokens}

    async def close(self) -> None:
        self._closed = True
        for seq in [*self._waiting, *self._admitted]:
            seq.outputs.put_nowait(Unavailable(f"model {self.runtime.name} is shutting down"))
            self._release(seq)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=True)

    # --- the loop -----------------------------------------------------------------------------------------
    def _ensure_loop(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"engine {self.runtime.name}")

    def _report(self) -> None:
        if self._observer is not None:
            self._observer.occupancy(len(self._admitted), len(self._waiting),
                                     self._reserved / self.options.kv_cache_tokens)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._expire()
            newcomers = self._admit()
            if not newcomers and not self._admitted:
                self._wake.clear()
                if not self._waiting:
                    await self._wake.wait()
                    continue
                await self._wake.wait()  # waiting, but nothing fits: a release wakes us
                continue
            try:
                events = await loop.run_in_executor(self._executor, self._step, newcomers)
            except Exception as exc:
                log.exception("decode step of %s failed", self.runtime.name)
                self._fail_all(exc)
                continue
            now = time.perf_counter()
            for seq, out in events:
                if seq.done:
                    continue
                if self._observer is not None:
                    if seq.last_at is None:
                        self._observer.first_token(now - seq.arrived)
                    else:
                        self._observer.next_token(now - seq.last_at)
                seq.last_at = now
                seq.outputs.put_nowait(out)
                if out.finish_reason is not None:
                    if self._observer is not None:
                        self._observer.finished(now - seq.arrived, len(seq.prompt), seq.generated)
                    self._release(seq)
            await asyncio.sleep(0)  # let clients that left run their cancellation before the next step

    def _expire(self) -> None:
        now = time.monotonic()
        for seq in [*self._waiting, *self._admitted]:
            if now > seq.deadline:
                seq.outputs.put_nowait(DeadlineExceeded("the request timed out"))
                self._release(seq)

    def _admit(self) -> list[_Sequence]:
        """FIFO: the head waits until it fits, and nobody overtakes it (no starvation)."""
        admitted: list[_Sequence] = []
        while self._waiting and len(self._admitted) < self.options.max_running:
            head = self._waiting[0]
            if self._reserved + head.reserve > self.options.kv_cache_tokens:
                break
            self._waiting.popleft()
            self._admitted.add(head)
            self._reserved += head.reserve
            admitted.append(head)
        if admitted:
            self._report()
        return admitted

    def _fail_all(self, exc: Exception) -> None:
        error = exc if isinstance(exc, MaasError) else Unavailable(f"generation failed: {type(exc).__name__}")
        for seq in list(self._admitted):
            seq.outputs.put_nowait(error)
            self._release(seq)
        self._running = []
        self._batch = None

    # --- the worker thread --------------------------------------------------------------------------------
    def _step(self, newcomers: list[_Sequence]) -> list[tuple[_Sequence, GenerationOutput]]:
        rt = self.runtime
        keep = [i for i, s in enumerate(self._running) if not s.done]
        if len(keep) != len(self._running):
            self._batch = rt.select(self._batch, keep) if keep else None
            self._running = [self._running[i] for i in keep]
        events: list[tuple[_Sequence, GenerationOutput]] = []
        if self._running:
            self._batch, logits = rt.step(self._batch, [s.last_token for s in self._running])
            events += self._sample(self._running, logits)
        newcomers = [s for s in newcomers if not s.done]
        if newcomers:
            batch, logits = rt.prefill([s.prompt for s in newcomers], [s.reserve for s in newcomers])
            events += self._sample(newcomers, logits)
            self._batch = batch if self._batch is None else rt.merge(self._batch, batch)
            self._running += newcomers
        return events

    def _sample(self, rows: list[_Sequence], logits: Any) -> list[tuple[_Sequence, GenerationOutput]]:
        events = []
        for i, seq in enumerate(rows):
            if seq.done:
                continue
            token, logprobs = choose(logits[i], seq.params, seq.generator)
            seq.last_token = token
            seq.generated += 1
            out = GenerationOutput("", [token], prompt_tokens=len(seq.prompt))
            if seq.params.logprobs is not None:
                out.logprobs.append(self._logprob(token, logprobs, seq.params.logprobs))
            if token in self.runtime.eos_token_ids:
                out.text = seq.stream.flush()
                out.finish_reason = "stop"
            else:
                out.text = seq.stream.add(token)
                if seq.stream.stopped:
                    out.finish_reason = "stop"
                elif (seq.generated >= seq.params.max_tokens
                      or len(seq.prompt) + seq.generated >= self.runtime.context_length):
                    out.text += seq.stream.flush()
                    out.finish_reason = "length"
            out.completion_tokens = seq.generated
            events.append((seq, out))
        return events

    def _logprob(self, token: int, logprobs: Any, top: int) -> TokenLogprob:
        import torch

        pairs: tuple[tuple[str, float], ...] = ()
        if top > 0:
            values, ids = torch.topk(logprobs, top)
            pairs = tuple((self.runtime.decode([int(t)]), float(v)) for v, t in zip(values, ids, strict=True))
        return TokenLogprob(self.runtime.decode([token]), float(logprobs[token]), pairs)
