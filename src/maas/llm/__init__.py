"""Language models: text-generation and embedding runtimes, the continuous-batching engine over them, and the
registry import of Hugging Face directories, GGUF files and live transformers objects (core: no transport)."""

from __future__ import annotations

KINDS = ("text-generation", "embedding")
RUNTIMES = ("transformers", "onnxruntime-genai")
# The runtime a kind gets by default: the faster one measured here (bench/llm.py, SmolLM2-135M, 2 loaded CPU
# cores, same run): genai spends 0.65x the CPU per token of transformers at concurrency 1, but its rows decode
# one generator at a time while torch batches them, so at concurrency 16 transformers made 8x the tokens/s at
# 0.28x the CPU per token. A server is judged under concurrency: text generation defaults to transformers.
# onnxruntime-genai builds decoders only, so embeddings stay on transformers too. `--runtime onnxruntime-genai`
# (or `maas optimize --quantize int4|int8`) publishes a genai version, selectable by number or alias.
DEFAULT_RUNTIMES = {"text-generation": "transformers", "embedding": "transformers"}


def is_language_model(config: dict[str, object]) -> bool:
    """Whether a version's config says it is served by this package rather than by onnxruntime sessions."""
    return config.get("kind") in KINDS
