"""What the engine is asked (a prompt's tokens and how to sample) and what it answers, step by step."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: int | None = None  # None: none; 0: the chosen token's; k: also the k most likely
    timeout_s: float | None = None


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass
class GenerationOutput:
    """One step's news for one sequence: the text it added (possibly empty while a stop string may be forming)
    and, on the last one, why it finished (`stop` or `length`)."""

    text: str
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
