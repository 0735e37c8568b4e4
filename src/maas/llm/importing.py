"""Language models into the registry: a Hugging Face directory (config, safetensors, tokenizer, generation
config, chat template), a GGUF file (dequantized by transformers and stored as safetensors) or live
transformers objects. Every file is streamed to the blob store as it is; pickled checkpoints (`.bin`, `.pt`…)
are refused as other pickles are, and with `trust` they are rewritten as safetensors first."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from maas.errors import InvalidArgument
from maas.formats import safety
from maas.llm import DEFAULT_RUNTIMES, RUNTIMES
from maas.registry import Lineage, ModelVersion, Registry
from maas.types import Signature, TensorSpec, check_name

log = logging.getLogger(__name__)

PICKLED_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
SKIPPED = {".gitattributes"}
CONFIG_FILES = ("config.json",)


def looks_like_hf_dir(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def kind_of(directory: Path) -> str:
    """text-generation for causal LMs; embedding for encoders (a sentence-transformers layout, or no LM head)."""
    cfg = json.loads((directory / "config.json").read_text())
    archs = [str(a) for a in cfg.get("architectures") or []]
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        return "text-generation"
    if (directory / "modules.json").is_file() or archs:
        return "embedding"
    raise InvalidArgument(f"{directory.name}/config.json names no architecture; cannot tell the model's kind")


def import_path(registry: Registry, path: Path, *, name: str, trust: bool = False, description: str = "",
                tags: Mapping[str, str] | None = None, aliases: Iterable[str] = (),
                runtime: str | None = None) -> ModelVersion:
    """`maas import DIR` (Hugging Face layout) or `maas import FILE.gguf`; with `runtime="onnxruntime-genai"`
    (default: the kind's, `DEFAULT_RUNTIMES`) the converted version is published next and returned, and
    `aliases` point at it."""
    check_name(name)
    if runtime is not None and runtime not in RUNTIMES:
        raise InvalidArgument(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if path.is_file() and path.suffix.lower() == ".gguf":
        with registry.work_dir("maas-gguf-") as tmp:
            model, tokenizer = load_gguf(path)
            out = tmp / "hf"
            save_live(model, tokenizer, out)
            del model
            return _then_convert(registry, out, runtime, aliases, name=name, source_format="gguf",
                                 description=description, tags=tags, source_file=path.name)
    if not looks_like_hf_dir(path):
        raise InvalidArgument(f"{path.name} is neither a .gguf file nor a Hugging Face directory with config.json")
    has_safetensors = any(path.glob("*.safetensors"))
    pickled = sorted(p for p in path.iterdir() if p.suffix.lower() in PICKLED_WEIGHTS)
    if pickled and not has_safetensors:
        safety.refuse_code_loading(pickled[0], "a pickled checkpoint", trust)
        with registry.work_dir("maas-hf-") as tmp:
            out = tmp / "hf"
            model, tokenizer = _load_trusted_pickled(path)
            save_live(model, tokenizer, out)
            return _then_convert(registry, out, runtime, aliases, name=name, source_format="huggingface",
                                 description=description, tags=tags)
    return _then_convert(registry, path, runtime, aliases, name=name, source_format="huggingface",
                         description=description, tags=tags)


def _then_convert(registry: Registry, directory: Path, runtime: str | None, aliases: Iterable[str],
                  **publish: Any) -> ModelVersion:
    kind = kind_of(directory)
    runtime = runtime or DEFAULT_RUNTIMES[kind]
    if runtime == "onnxruntime-genai" and kind != "text-generation":
        raise InvalidArgument(f"onnxruntime-genai runs text-generation models only; this one is an {kind} model")
    if runtime == "transformers":
        return publish_dir(registry, directory, aliases=aliases, **publish)
    from maas.llm.convert import convert

    source = publish_dir(registry, directory, **publish)
    return convert(registry, source.ref, "fp32", aliases=aliases)


def register_live(registry: Registry, model: Any, tokenizer: Any, *, name: str, description: str = "",
                  tags: Mapping[str, str] | None = None, aliases: Iterable[str] = (),
                  runtime: str | None = None) -> ModelVersion:
    """`maas.register(model, tokenizer, name=…)` for a transformers model and its tokenizer (then converted,
    as `import_path` does)."""
    check_name(name)
    if runtime is not None and runtime not in RUNTIMES:
        raise InvalidArgument(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if tokenizer is None:
        raise InvalidArgument("a language model is registered with its tokenizer: register(model, tokenizer, …)")
    with registry.work_dir("maas-live-") as tmp:
        out = tmp / "hf"
        save_live(model, tokenizer, out)
        return _then_convert(registry, out, runtime, aliases, name=name, source_format="transformers",
                             description=description, tags=tags)


def is_transformers_model(obj: Any) -> bool:
    return any(c.__module__.startswith("transformers.") and c.__name__ == "PreTrainedModel"
               for c in type(obj).__mro__)


def load_gguf(path: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True,
                                                     dtype="float32")
    except (ValueError, OSError, KeyError, RuntimeError) as exc:
        raise InvalidArgument(f"cannot read {path.name} as a GGUF model: {str(exc)[:300]}") from None
    # transformers dequantizes GGUF weights to float32 on load; what stays marked "gguf" is only the record of
    # it, which would stop save_pretrained and make a reload look for the GGUF file again.
    setattr(model, "hf_quantizer", None)  # noqa: B010 - a torch Module attribute mypy cannot see
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model, tokenizer


def _load_trusted_pickled(path: Path) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    auto = AutoModelForCausalLM if kind_of(path) == "text-generation" else AutoModel
    return (auto.from_pretrained(path, local_files_only=True, use_safetensors=False),
            AutoTokenizer.from_pretrained(path, local_files_only=True))


def save_live(model: Any, tokenizer: Any, out: Path) -> None:
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    generation = getattr(model, "generation_config", None)
    if generation is not None and not (out / "generation_config.json").exists():
        generation.save_pretrained(out)


def _role(relpath: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9._-]", "-", relpath.lower()).lstrip(".-") or "file"
    role, n = base[:120], 2
    while role in taken:
        role, n = f"{base[:112]}-{n}", n + 1
    taken.add(role)
    return role


def publish_dir(registry: Registry, directory: Path, *, name: str, source_format: str, description: str = "",
                tags: Mapping[str, str] | None = None, aliases: Iterable[str] = (),
                source_file: str | None = None) -> ModelVersion:
    kind = kind_of(directory)
    if not any(p.suffix == ".safetensors" for p in _files(directory)):
        raise InvalidArgument(f"{directory.name}/ has no .safetensors weights")
    cfg = json.loads((directory / "config.json").read_text())
    text = cfg.get("text_config") or cfg
    context = int(text.get("max_position_embeddings") or text.get("n_positions") or 0)
    vocab = int(text.get("vocab_size") or 0)
    config: dict[str, Any] = {"kind": kind, "context_length": context, "vocab_size": vocab,
                              "architecture": (cfg.get("architectures") or [""])[0]}
    if kind == "embedding":
        config["dimensions"] = int(text.get("hidden_size") or 0)
        signature = Signature((TensorSpec("input", "BYTES", (-1,)),),
                              (TensorSpec("embedding", "FP32", (-1, config["dimensions"])),))
    else:
        signature = Signature((TensorSpec("prompt", "BYTES", (-1,)),), (TensorSpec("text", "BYTES", (-1,)),))
    if source_file:
        config["source_file"] = source_file
    return publish_files(registry, directory, name=name, config=config, signature=signature,
                         source_format=source_format, description=description, tags=tags, aliases=aliases)


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.name not in SKIPPED
                  and p.suffix.lower() not in PICKLED_WEIGHTS
                  and not any(part.startswith(".") for part in p.relative_to(directory).parts))


def publish_files(registry: Registry, directory: Path, *, name: str, config: dict[str, Any],
                  signature: Signature | None, source_format: str, description: str = "",
                  tags: Mapping[str, str] | None = None, aliases: Iterable[str] = (),
                  metrics: dict[str, Any] | None = None,
                  lineage: Lineage | None = None, parity: dict[str, Any] | None = None) -> ModelVersion:
    """Every file of `directory` as one version; its layout is kept in `config.files` (role -> path)."""
    files = _files(directory)
    if not any(p.name in ("tokenizer.json", "tokenizer.model", "vocab.txt", "vocab.json") for p in files):
        raise InvalidArgument(f"{directory.name}/ has no tokenizer (tokenizer.json, vocab.txt…)")
    safety.check_size(directory, registry.settings.max_upload_bytes)
    taken: set[str] = set()
    manifest = {_role(str(p.relative_to(directory)), taken): str(p.relative_to(directory)) for p in files}
    config = {**config, "files": manifest}
    version = registry.publish(
        name, {role: directory / rel for role, rel in manifest.items()}, description=description,
        tags=dict(tags or {}), signature=signature, source_format=source_format, config=config,
        aliases=tuple(aliases), metrics=metrics, lineage=lineage, parity=parity,
    )
    log.info("registered %s (%s, %d files)", version.ref, config["kind"], len(manifest))
    return version


def materialize(registry: Registry, version: ModelVersion, into: Path) -> Path:
    """A directory laid out as the import found it, of links to the verified blobs (no copy)."""
    files: dict[str, str] = version.config.get("files") or {}
    for role, rel in files.items():
        target = into / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise InvalidArgument(f"{version.ref} lists an unsafe file name {rel!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(registry.artifact_path(version, role))
    return into
