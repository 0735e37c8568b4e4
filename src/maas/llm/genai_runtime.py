"""Text generation with onnxruntime-genai, behind the same `TextRuntime` as transformers so the engine's
continuous batching, sampling, stop strings, limits and cancellation apply unchanged.

Each row of a batch is its own `og.Generator` (its own KV cache, sized to the row's prompt + max_tokens up
front, as genai's shared past/present buffer needs): rows join and leave a batch without copying any cache,
and the engine samples from the logits each generator returns. genai's own dynamic batching (`og.Engine`)
needs paged attention, which its CPU provider does not build."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from maas.llm.hf_tokens import HfTokens, eos_ids, load_tokenizer

log = logging.getLogger(__name__)

RUNTIME = "onnxruntime-genai"


class GenaiTextRuntime(HfTokens):
    def __init__(self, directory: Path, tokenizer: Any, name: str = "") -> None:
        import numpy as np
        import onnxruntime_genai as og
        import torch

        self.og, self.np, self.torch = og, np, torch
        self.model = og.Model(str(directory))
        self.tokenizer = tokenizer
        self.name = name
        cfg = json.loads((directory / "genai_config.json").read_text())["model"]
        self.context_length = int(cfg["context_length"])
        self.vocab_size = int(cfg["vocab_size"])
        generation: dict[str, Any] = {}
        if (directory / "generation_config.json").is_file():
            generation = json.loads((directory / "generation_config.json").read_text())
        self.eos_token_ids = eos_ids(tokenizer, generation, cfg)

    @classmethod
    def load(cls, directory: Path, name: str = "") -> GenaiTextRuntime:
        return cls(directory, load_tokenizer(directory), name)

    def _generator(self, prompt: list[int], length: int) -> Any:
        params = self.og.GeneratorParams(self.model)
        params.set_search_options(max_length=min(max(length, len(prompt) + 1), self.context_length), batch_size=1)
        gen = self.og.Generator(self.model, params)
        gen.append_tokens(self.np.asarray(prompt, dtype=self.np.int32))
        return gen

    def _logits(self, rows: list[Any]) -> Any:
        return self.torch.from_numpy(self.np.concatenate([g.get_logits()[:, -1, :] for g in rows])).float()

    def prefill(self, prompts: list[list[int]], lengths: Sequence[int] | None = None) -> tuple[list[Any], Any]:
        sizes = list(lengths) if lengths is not None else [self.context_length] * len(prompts)
        rows = [self._generator(p, n) for p, n in zip(prompts, sizes, strict=True)]
        return rows, self._logits(rows)

    def step(self, batch: list[Any], tokens: Sequence[int]) -> tuple[list[Any], Any]:
        for gen, token in zip(batch, tokens, strict=True):
            gen.append_tokens(self.np.asarray([token], dtype=self.np.int32))
        return batch, self._logits(batch)

    def merge(self, a: list[Any], b: list[Any]) -> list[Any]:
        return a + b

    def select(self, batch: list[Any], rows: Sequence[int]) -> list[Any]:
        return [batch[i] for i in rows]
