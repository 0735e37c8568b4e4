"""Text generation with transformers on torch: prompts are left-padded into one batch whose KV cache
(`DynamicCache`) grows by a column each decode step; rows join by left-padding the shorter cache and leave
by index, so sequences of any length share every forward pass with a correct attention mask and positions."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maas.llm.hf_tokens import HfTokens, eos_ids, load_tokenizer

log = logging.getLogger(__name__)


@dataclass
class TorchBatch:
    cache: Any  # transformers.DynamicCache over all rows, left-padded to one length
    mask: Any  # int64 [rows, cache length]: 1 where a real token is
    positions: Any  # int64 [rows]: the position the next token of each row takes

    @property
    def rows(self) -> int:
        return int(self.mask.shape[0])

    @property
    def kv_tokens(self) -> int:
        return int(self.mask.sum())


class TransformersTextRuntime(HfTokens):
    def __init__(self, model: Any, tokenizer: Any, name: str = "") -> None:
        import torch

        self.torch = torch
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        cfg = model.config
        self.context_length = int(
            getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None) or 2048
        )
        self.vocab_size = int(cfg.vocab_size)
        self.eos_token_ids = eos_ids(tokenizer, getattr(model, "generation_config", None), cfg)
        eos = self.eos_token_ids
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(eos), 0))

    @classmethod
    def load(cls, directory: Path, name: str = "") -> TransformersTextRuntime:
        from transformers import AutoModelForCausalLM

        tokenizer = load_tokenizer(directory)
        model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True, use_safetensors=True,
                                                     dtype="float32")
        return cls(model, tokenizer, name)

    # --- the batch ----------------------------------------------------------------------------------------
    def prefill(self, prompts: list[list[int]], lengths: Sequence[int] | None = None) -> tuple[TorchBatch, Any]:
        torch = self.torch
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[i, width - len(p):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        from transformers import DynamicCache

        cache = DynamicCache()
        with torch.inference_mode():
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                             use_cache=True, logits_to_keep=1)
        logits = out.logits[:, -1, :].float()
        return TorchBatch(out.past_key_values, mask, mask.sum(-1)), logits

    def step(self, batch: TorchBatch, tokens: Sequence[int]) -> tuple[TorchBatch, Any]:
        torch = self.torch
        ids = torch.tensor(list(tokens), dtype=torch.long).unsqueeze(-1)
        mask = torch.cat([batch.mask, torch.ones((batch.rows, 1), dtype=torch.long)], dim=-1)
        with torch.inference_mode():
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=batch.positions.unsqueeze(-1),
                             past_key_values=batch.cache, use_cache=True)
        return TorchBatch(out.past_key_values, mask, batch.positions + 1), out.logits[:, -1, :].float()

    def merge(self, a: TorchBatch, b: TorchBatch) -> TorchBatch:
        torch = self.torch
        from transformers import DynamicCache

        width = max(a.mask.shape[1], b.mask.shape[1])

        def pad(t: Any, dim: int) -> Any:
            missing = width - t.shape[dim]
            if missing == 0:
                return t
            shape = list(t.shape)
            shape[dim] = missing
            return torch.cat([torch.zeros(shape, dtype=t.dtype), t], dim=dim)

        layers = []
        for la, lb in zip(a.cache.layers, b.cache.layers, strict=True):
            keys = torch.cat([pad(la.keys, -2), pad(lb.keys, -2)], dim=0)
            values = torch.cat([pad(la.values, -2), pad(lb.values, -2)], dim=0)
            layers.append((keys, values))
        mask = torch.cat([pad(a.mask, 1), pad(b.mask, 1)], dim=0)
        return TorchBatch(DynamicCache(ddp_cache_data=layers), mask, torch.cat([a.positions, b.positions]))

    def select(self, batch: TorchBatch, rows: Sequence[int]) -> TorchBatch:
        torch = self.torch
        from transformers import DynamicCache

        index = torch.tensor(list(rows), dtype=torch.long)
        mask = batch.mask.index_select(0, index)
        # Columns that are padding in every remaining row hold no one's keys: drop them to free the memory.
        used = mask.any(dim=0).nonzero()
        start = int(used[0]) if len(used) else mask.shape[1]
        layers = [
            (layer.keys.index_select(0, index)[:, :, start:].contiguous(),
             layer.values.index_select(0, index)[:, :, start:].contiguous())
            for layer in batch.cache.layers
        ]
        return TorchBatch(DynamicCache(ddp_cache_data=layers), mask[:, start:].contiguous(),
                          batch.positions.index_select(0, index))
