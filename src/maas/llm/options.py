"""Engine limits from the environment (MAAS_LLM_ prefix), kept beside the engine until they join Settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:  # the engine loads with the first text-generation model, not with every server
    from maas.llm.engine import EngineOptions


class LlmSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAAS_LLM_", extra="ignore")

    max_running: int = Field(16, ge=1, le=1024, description="Sequences decoded together in one step")
    max_waiting: int = Field(64, ge=0, le=100000, description="Requests queued past those; then 429")
    kv_cache_tokens: int = Field(32768, ge=16, description="KV-cache slots over all running sequences")
    request_timeout_s: float = Field(300.0, gt=0, description="Longest a generation may take")
    max_n: int = Field(8, ge=1, le=128, description="Largest `n` (choices per request)")
    max_embedding_inputs: int = Field(256, ge=1, description="Largest batch of texts in one embeddings request")
    embedding_waiting: int = Field(64, ge=0, description="Embedding requests queued per model; then 429")

    def engine(self) -> EngineOptions:
        from maas.llm.engine import EngineOptions

        return EngineOptions(self.max_running, self.max_waiting, self.kv_cache_tokens, self.request_timeout_s)
