"""A text-generation version converted to onnxruntime-genai's ONNX (fp32, or int4/int8 weights) and published
as the model's next version with lineage to its parent.

The builder runs in-process (`onnxruntime_genai.models.builder.create_model`, the function its command line
calls). The child keeps its parent's tokenizer files byte for byte, so both encode prompts alike, and records
the greedy parity with its parent on stored prompts: token-for-token equality is required of fp32."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from maas.errors import FailedPrecondition, InvalidArgument
from maas.llm import is_language_model
from maas.llm.genai_runtime import RUNTIME as GENAI
from maas.llm.importing import materialize, publish_files
from maas.llm.quality import agreement
from maas.registry import Lineage, ModelVersion, Registry
from maas.types import ModelRef

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "int8", "int4")
# Files of the source that the child does not keep: the weights (replaced by ONNX).
_WEIGHTS = (".safetensors", ".safetensors.index.json")


def source_of(registry: Registry, version: ModelVersion) -> ModelVersion:
    """The Hugging Face (safetensors) version a genai version was built from: up its lineage."""
    if not is_language_model(version.config) or version.config.get("kind") != "text-generation":
        raise InvalidArgument(f"{version.ref} is not a text-generation model; only those convert to {GENAI}")
    seen = {version.version}
    while version.config.get("runtime") == GENAI:
        if version.lineage.parent is None or version.lineage.parent in seen:
            raise FailedPrecondition(f"{version.ref} runs on {GENAI} but names no source version to build from")
        version = registry.get(ModelRef(version.model, version.lineage.parent))
        seen.add(version.version)
    return version


def load_runtime(registry: Registry, version: ModelVersion, into: Path) -> Any:
    directory = materialize(registry, version, into)
    if version.config.get("runtime") == GENAI:
        from maas.llm.genai_runtime import GenaiTextRuntime

        return GenaiTextRuntime.load(directory, version.model)
    from maas.llm.torch_runtime import TransformersTextRuntime

    return TransformersTextRuntime.load(directory, version.model)


def build(hf_dir: Path, out: Path, precision: str) -> None:
    """onnxruntime-genai's model builder on a Hugging Face directory, in-process, quietly."""
    if precision not in PRECISIONS:
        raise InvalidArgument(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    from onnxruntime_genai.models.builder import create_model, parse_extra_options

    cfg = json.loads((hf_dir / "config.json").read_text())
    extra = ["shared_embeddings=true"] if cfg.get("tie_word_embeddings") and precision != "fp32" else []
    with tempfile.TemporaryDirectory(prefix="maas-genai-cache-") as cache:
        args = (None, str(hf_dir), str(out), precision, "cpu", cache)
        noise = io.StringIO()
        try:
            with contextlib.redirect_stdout(noise), contextlib.redirect_stderr(noise):
                create_model(*args, **parse_extra_options(*args, extra))
        except (ValueError, NotImplementedError, KeyError, OSError) as exc:
            raise InvalidArgument(f"onnxruntime-genai cannot build this model: {str(exc)[:300]}") from None
    if not (out / "genai_config.json").is_file():
        raise FailedPrecondition("onnxruntime-genai's builder wrote no genai_config.json")


def convert(registry: Registry, ref: str, precision: str = "fp32", *, transform: str = "convert",
            measure: Callable[[Any, Any, Path], dict[str, Any]] | None = None, description: str = "",
            aliases: Iterable[str] = ()) -> ModelVersion:
    """Build the genai version of `ref` (from its safetensors source) and publish it as the next version, with
    greedy parity against `ref` (fp32 must match it). `measure(parent_runtime, child_runtime, child_dir)` may return a
    report, stored in the child's metrics under `optimize`."""
    from maas.llm.genai_runtime import GenaiTextRuntime

    parent = registry.get(ref)
    source = source_of(registry, parent)
    if precision == "fp32" and parent.config.get("runtime") == GENAI:
        raise FailedPrecondition(f"{parent.ref} already runs on {GENAI}; quantize it (int4, int8) instead")
    with tempfile.TemporaryDirectory(prefix="maas-genai-") as tmp:
        src = materialize(registry, source, Path(tmp) / "source")
        out = Path(tmp) / "genai"
        build(src, out, precision)
        for f in src.rglob("*"):  # the source's tokenizer, chat template and generation config, as they were
            rel = f.relative_to(src)
            if f.is_file() and not str(rel).endswith(_WEIGHTS):
                target = out / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, target)
        parent_rt = load_runtime(registry, parent, Path(tmp) / "parent")
        child_rt = GenaiTextRuntime.load(out, parent.model)
        check = agreement(parent_rt, child_rt)
        if precision == "fp32" and not check["passed"]:
            raise FailedPrecondition(
                f"the {GENAI} build of {parent.ref} differs from it greedily on "
                f"{check['prompts'] - check['equal_prompts']} of {check['prompts']} stored prompts; "
                "no version was created")
        metrics: dict[str, Any] = {}
        if measure is not None:
            metrics["optimize"] = measure(parent_rt, child_rt, out)
        del parent_rt, child_rt
        config = {k: v for k, v in source.config.items() if k != "files"}
        config.update(runtime=GENAI, precision=precision)
        params = {"runtime": GENAI, "precision": precision, "execution_provider": "cpu",
                  "built_from": source.version}
        version = publish_files(
            registry, out, name=parent.model, config=config, signature=parent.signature,
            source_format="onnxruntime-genai", tags=dict(parent.tags), metrics=metrics,
            description=description or f"{GENAI} {precision} of {parent.ref}",
            lineage=Lineage(parent=parent.version, transform=transform, params=params), parity=check,
            aliases=aliases)
    log.info("published %s (%s %s of version %d)", version.ref, GENAI, precision, parent.version)
    return version
