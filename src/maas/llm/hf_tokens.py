"""Tokens through a Hugging Face tokenizer (and its chat template), shared by every text runtime so that a
converted version encodes prompts exactly as its parent does."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def load_tokenizer(directory: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(directory, local_files_only=True)


class HfTokens:
    tokenizer: Any

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=True))

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))

    def chat_prompt(self, messages: list[dict[str, str]]) -> list[int]:
        if not getattr(self.tokenizer, "chat_template", None):
            text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"
            return self.encode(text)
        out = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        ids = out["input_ids"] if isinstance(out, dict) or hasattr(out, "keys") else out
        return [int(i) for i in ids]


def eos_ids(tokenizer: Any, *sources: Any) -> frozenset[int]:
    """Every end-of-sequence id the generation config, the model config and the tokenizer name."""
    eos: set[int] = set()
    for source in sources:
        value = source.get("eos_token_id") if isinstance(source, dict) else getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            eos.add(value)
        elif isinstance(value, list | tuple):
            eos.update(int(v) for v in value)
    if tokenizer.eos_token_id is not None:
        eos.add(int(tokenizer.eos_token_id))
    return frozenset(eos)
