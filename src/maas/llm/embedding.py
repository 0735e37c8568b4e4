"""Sentence embeddings with transformers on torch, pooled as the model's sentence-transformers config says
(`1_Pooling/config.json`: mean, CLS, max or mean-sqrt-len over real tokens) and L2-normalized when its
`modules.json` lists a Normalize module; without such files: mean pooling, normalized."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def pooling_of(directory: Path) -> tuple[str, bool]:
    """-> (pooling mode, normalize)."""
    modules_file = directory / "modules.json"
    if not modules_file.is_file():
        return "mean", True
    modules = json.loads(modules_file.read_text())
    normalize = any(str(m.get("type", "")).endswith("Normalize") for m in modules)
    mode = "mean"
    for m in modules:
        if str(m.get("type", "")).endswith("Pooling"):
            cfg_file = directory / str(m.get("path", "")) / "config.json"
            if cfg_file.is_file():
                cfg = json.loads(cfg_file.read_text())
                for key, name in (("pooling_mode_cls_token", "cls"), ("pooling_mode_max_tokens", "max"),
                                  ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len"),
                                  ("pooling_mode_mean_tokens", "mean")):
                    if cfg.get(key):
                        mode = name
                        break
    return mode, normalize


class TransformersEmbeddingRuntime:
    def __init__(self, model: Any, tokenizer: Any, pooling: str = "mean", normalize: bool = True,
                 name: str = "") -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.normalize = normalize
        self.name = name
        cfg = model.config
        limit = int(getattr(tokenizer, "model_max_length", 0) or 0)
        positions = int(getattr(cfg, "max_position_embeddings", 512) or 512)
        self.context_length = min(limit, positions) if 0 < limit < 10**6 else positions
        self.dimensions = int(cfg.hidden_size)

    @classmethod
    def load(cls, directory: Path, name: str = "") -> TransformersEmbeddingRuntime:
        from transformers import AutoModel, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        model = AutoModel.from_pretrained(directory, local_files_only=True, use_safetensors=True, dtype="float32")
        mode, normalize = pooling_of(directory)
        return cls(model, tokenizer, mode, normalize, name)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self.tokenizer(list(texts), add_special_tokens=True)["input_ids"]]

    def embed(self, texts: Sequence[str]) -> Any:
        import torch

        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.context_length,
                             return_tensors="pt")
        with torch.inference_mode():
            hidden = self.model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.pooling == "max":
            pooled = hidden.masked_fill(mask == 0, float("-inf")).max(dim=1).values
        else:
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            if self.pooling == "mean_sqrt_len":
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9).sqrt()
        if self.normalize:
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
        return pooled.float().numpy()
