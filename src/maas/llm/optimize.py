"""`maas optimize REF --quantize int4|int8` for a text-generation model: onnxruntime-genai's builder quantizes
the weights (MatMulNBits, block-wise round-to-nearest) into a child version with lineage, and the report
measures parent and child the same way in the same run: size, time to first token and tokens/s at
concurrency 1 and 8, perplexity on a stored text and greedy agreement with the parent on stored prompts.
The accuracy gate reads greedy agreement as accuracy (the parent agrees with itself: 1.0)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from maas.errors import FailedPrecondition, InvalidArgument
from maas.llm import quality
from maas.registry import ModelVersion, Registry

MODES = ("int4", "int8")
CONCURRENCY = (1, 8)


def _size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file() and p.name.startswith("model"))


def _measure(runtime: Any, size: int, timing: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"size_bytes": size, "perplexity": quality.perplexity(runtime)}
    if timing:
        for c in CONCURRENCY:
            s = quality.speed(runtime, c, requests=max(2, c))
            if c == 1:
                out["ttft_ms_c1"] = s["ttft_ms"]
            out[f"tokens_per_s_c{c}"] = s["tokens_per_s"]
    return out


def quantize(registry: Registry, ref: str, mode: str, *, max_accuracy_drop: float | None = None,
             timing: bool = True, progress: Callable[[str, float], None] | None = None
             ) -> tuple[ModelVersion, dict[str, Any]]:
    from maas.llm.convert import convert

    if mode not in MODES:
        raise InvalidArgument(f"a language model quantizes to {' or '.join(MODES)} weights, not {mode!r}")
    if max_accuracy_drop is not None and not 0 <= max_accuracy_drop <= 1:
        raise InvalidArgument(f"max accuracy drop is an absolute fraction in [0, 1], got {max_accuracy_drop}")
    say = progress or (lambda stage, fraction: None)
    parent = registry.get(ref)
    parent_size = sum(a.size for a in parent.artifacts if a.role.startswith("model"))
    report: dict[str, Any] = {}

    def measure(parent_rt: Any, child_rt: Any, child_dir: Path) -> dict[str, Any]:
        say("measuring agreement", 0.5)
        check = quality.agreement(parent_rt, child_rt)
        say("measuring parent", 0.6)
        before = _measure(parent_rt, parent_size, timing)
        before["accuracy"] = 1.0
        say("measuring child", 0.8)
        after = _measure(child_rt, _size(child_dir), timing)
        after["accuracy"] = check["token_agreement"]
        comparison: dict[str, Any] = {
            "size_ratio": round(after["size_bytes"] / before["size_bytes"], 4),
            "perplexity_ratio": round(after["perplexity"] / before["perplexity"], 4),
            "accuracy_drop": round(1.0 - check["token_agreement"], 6),
        }
        for c in CONCURRENCY if timing else ():
            key = f"tokens_per_s_c{c}"
            comparison[f"speedup_c{c}"] = round(after[key] / before[key], 3)
        if max_accuracy_drop is not None and comparison["accuracy_drop"] > max_accuracy_drop + 1e-12:
            raise FailedPrecondition(
                f"greedy agreement with the parent fell to {check['token_agreement']:.4f} (drop "
                f"{comparison['accuracy_drop']:.4f}), more than the allowed {max_accuracy_drop:.4f}: missed by "
                f"{comparison['accuracy_drop'] - max_accuracy_drop:.4f}; no version was created")
        report.update(transform="quantize", params={"mode": mode, "runtime": "onnxruntime-genai"},
                      parent_version=parent.version, data=None, parent=before, child=after,
                      comparison=comparison, details={"agreement": check, "perplexity_text_tokens":
                                                      len(parent_rt.encode(quality.TEXT))})
        say("publishing", 0.95)
        return report

    say(f"building {mode}", 0.1)
    version = convert(registry, parent.ref, mode, transform="quantize", measure=measure,
                      description=f"quantize ({mode}, onnxruntime-genai) of {parent.ref}")
    say("done", 1.0)
    return version, report
