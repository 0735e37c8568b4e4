"""Language models: text-generation and embedding runtimes, the continuous-batching engine over them, and the
registry import of Hugging Face directories, GGUF files and live transformers objects (core: no transport)."""

from __future__ import annotations

KINDS = ("text-generation", "embedding")
RUNTIMES = ("transformers", "onnxruntime-genai")
# The runtime a kind gets by default: the faster one measured here (bench/llm.py, SmolLM2-135M on 2 CPU cores:
# genai 0.62 s TTFT and 3.4 tok/s at c=1 against transformers' 0.82 s and 2.6 tok/s). onnxruntime-genai builds
# decoders only, so embeddings stay on transformers. `maas import` of a text-generation model publishes the
# converted version as the next one (so the name serves it); the transformers version stays selectable by number.
DEFAULT_RUNTIMES = {"text-generation": "onnxruntime-genai", "embedding": "transformers"}


def is_language_model(config: dict[str, object]) -> bool:
    """Whether a version's config says it is served by this package rather than by onnxruntime sessions."""
    return config.get("kind") in KINDS
