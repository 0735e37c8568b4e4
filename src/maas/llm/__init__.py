"""Language models: text-generation and embedding runtimes, the continuous-batching engine over them, and the
registry import of Hugging Face directories, GGUF files and live transformers objects (core: no transport)."""

from __future__ import annotations

KINDS = ("text-generation", "embedding")


def is_language_model(config: dict[str, object]) -> bool:
    """Whether a version's config says it is served by this package rather than by onnxruntime sessions."""
    return config.get("kind") in KINDS
