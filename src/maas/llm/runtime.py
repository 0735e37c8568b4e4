"""The interface the engine drives: a text runtime prefills prompts into a batch with a KV cache, decodes one
token for every row of it, and lets rows join (merge) and leave (select) between steps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class Tokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def chat_prompt(self, messages: list[dict[str, str]]) -> list[int]: ...


class TextRuntime(Tokenizer, Protocol):
    """`Batch` is opaque to the engine; its rows are in the order the engine built it."""

    name: str
    context_length: int
    vocab_size: int
    eos_token_ids: frozenset[int]

    def prefill(self, prompts: list[list[int]], lengths: Sequence[int] | None = None) -> tuple[Any, Any]:
        """-> (batch, logits [len(prompts), vocab] of the next token, float32 torch tensor). `lengths`: the most
        tokens (prompt + generated) each row will hold, for runtimes that size their cache up front."""
        ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def step(self, batch: Any, tokens: Sequence[int]) -> tuple[Any, Any]:
        """Feed one token per row; -> (batch, logits [rows, vocab])."""
        ...

    def merge(self, a: Any, b: Any) -> Any: ...

    def select(self, batch: Any, rows: Sequence[int]) -> Any: ...


class EmbeddingRuntime(Protocol):
    name: str
    context_length: int
    dimensions: int

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def embed(self, texts: Sequence[str]) -> Any:
        """-> float32 numpy array [len(texts), dimensions]."""
        ...
