"""Choosing the next token from one row's logits: greedy at temperature 0, else temperature and nucleus
(top_p) sampling from a generator seeded per request, so a `seed` gives the same text every time."""

from __future__ import annotations

from typing import Any

from maas.llm.requests import SamplingParams


def make_generator(params: SamplingParams) -> Any:
    import torch

    gen = torch.Generator()
    if params.seed is not None:
        gen.manual_seed(params.seed)
    else:
        gen.seed()
    return gen


def choose(logits: Any, params: SamplingParams, generator: Any) -> tuple[int, Any]:
    """-> (token id, log-probabilities of the model's distribution [vocab], for logprobs)."""
    import torch

    logprobs = torch.log_softmax(logits, dim=-1)
    if params.temperature == 0.0:
        return int(torch.argmax(logits)), logprobs
    probs = torch.softmax(logits / params.temperature, dim=-1)
    if params.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        cumulative = torch.cumsum(sorted_probs, dim=-1)
        keep = cumulative - sorted_probs < params.top_p  # always keeps the most likely token
        sorted_probs = torch.where(keep, sorted_probs, torch.zeros_like(sorted_probs))
        pick = torch.multinomial(sorted_probs / sorted_probs.sum(), 1, generator=generator)
        return int(order[pick]), logprobs
    return int(torch.multinomial(probs, 1, generator=generator)), logprobs
