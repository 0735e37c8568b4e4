"""What an import is asked to do: one `ImportOptions` object, the caller's options merged over the defaults of
a `maas.yaml` found beside the model file (the caller wins), with labels and processing steps validated up front."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from maas import processing
from maas.errors import InvalidArgument
from maas.types import check_alias, check_tags

SIDECAR = "maas.yaml"
_SIDECAR_KEYS = frozenset({"description", "labels", "preprocess", "postprocess", "max_batch_size", "tags"})
MAX_LABELS = 100_000


@dataclass(frozen=True)
class ImportOptions:
    """Everything an import may be asked besides the model and its name. Each door (CLI flags, SDK keywords,
    upload form, job params) builds one and it is passed through unchanged to the converters and the
    publisher, so an option is added here and nowhere else. `resolve` validates it and fills the gaps from
    a `maas.yaml` beside the model (the caller wins); `format` applies to files only."""

    format: str = "auto"
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    labels: Sequence[str] | str | os.PathLike[str] | None = None  # a list, or a file of one label a line
    trust: bool = False
    allow_mismatch: bool = False
    sample_input: Any = None
    preprocess: Any = None
    postprocess: Any = None
    max_batch_size: int | None = None
    runtime: str | None = None  # language models: transformers | onnxruntime-genai (default: the kind's)

    def resolve(self, sidecar_dir: Path | None = None) -> ImportOptions:
        """Validated, with labels read, steps checked and `sidecar_dir/maas.yaml` merged under the caller's."""
        mbs = self.max_batch_size
        if mbs is not None and (not isinstance(mbs, int) or isinstance(mbs, bool) or mbs < 0):
            raise InvalidArgument(f"max_batch_size must be a non-negative integer, not {mbs!r}")
        opts = replace(
            self,
            description=self.description or "",
            tags=check_tags(dict(self.tags or {})),
            aliases=tuple(check_alias(a) for a in self.aliases),
            labels=read_labels(self.labels) if self.labels is not None else None,
            trust=bool(self.trust),
            allow_mismatch=bool(self.allow_mismatch),
        )
        if sidecar_dir is not None and (sidecar_dir / SIDECAR).is_file():
            opts = _merge_sidecar(opts, sidecar_dir / SIDECAR)
        pre, post = processing.validate(opts.preprocess, opts.postprocess)
        return replace(opts, preprocess=pre, postprocess=post)

    def to_params(self) -> dict[str, Any]:
        """The options as a background job's JSON parameters (`from_params` reads them back)."""
        if self.sample_input is not None:
            raise InvalidArgument("sample_input cannot travel with a background job")
        labels = self.labels
        if isinstance(labels, str | os.PathLike):
            labels = read_labels(labels)
        doc = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sample_input"}
        return {**doc, "tags": dict(self.tags), "aliases": list(self.aliases),
                "labels": list(labels) if labels is not None else None}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ImportOptions:
        """The options among a job's parameters (its other keys, such as the staged blob, are not options)."""
        known = {f.name for f in fields(cls)} - {"sample_input"}
        doc = {k: v for k, v in params.items() if k in known and v is not None}
        if "aliases" in doc:
            if not isinstance(doc["aliases"], list | tuple):
                raise InvalidArgument("params.aliases must be a list of aliases")
            doc["aliases"] = tuple(doc["aliases"])
        if "labels" in doc and not isinstance(doc["labels"], list):
            raise InvalidArgument("params.labels must be a list of strings")
        if "tags" in doc and not isinstance(doc["tags"], dict):
            raise InvalidArgument("params.tags must be a mapping")
        return cls(**doc)


def read_labels(labels: Iterable[str] | str | os.PathLike[str]) -> list[str]:
    """A list of labels, or a text file with one label per line (blank lines at the end ignored)."""
    if isinstance(labels, str | os.PathLike):
        path = Path(labels)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"cannot read labels file {path.name}: {exc}") from None
        items = text.rstrip("\n").split("\n") if text.strip() else []
        items = [s.rstrip("\r") for s in items]
    else:
        items = [str(s) for s in labels]
    if len(items) > MAX_LABELS:
        raise InvalidArgument(f"too many labels ({len(items)} > {MAX_LABELS})")
    return items


def _merge_sidecar(opts: ImportOptions, path: Path) -> ImportOptions:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidArgument(f"cannot read {path.name}: {str(exc).splitlines()[0]}") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise InvalidArgument(f"cannot read {path.name}: it nests too deeply") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"{path.name} must be a mapping of {sorted(_SIDECAR_KEYS)}")
    unknown = set(data) - _SIDECAR_KEYS
    if unknown:
        raise InvalidArgument(
            f"{path.name}: unknown keys {sorted(unknown)}; allowed: {sorted(_SIDECAR_KEYS)}"
        )
    tags = data.get("tags") or {}
    if not isinstance(tags, dict):
        raise InvalidArgument(f"{path.name}: tags must be a mapping")
    labels = data.get("labels")
    if labels is not None and not isinstance(labels, list):
        raise InvalidArgument(f"{path.name}: labels must be a list")
    mbs = data.get("max_batch_size")
    if mbs is not None and (not isinstance(mbs, int) or isinstance(mbs, bool) or mbs < 0):
        raise InvalidArgument(f"{path.name}: max_batch_size must be a non-negative integer")
    return replace(
        opts,
        description=opts.description or str(data.get("description") or ""),
        tags={**check_tags({str(k): str(v) for k, v in tags.items()}), **opts.tags},
        labels=opts.labels if opts.labels is not None else (read_labels(labels) if labels else None),
        preprocess=opts.preprocess if opts.preprocess is not None else data.get("preprocess"),
        postprocess=opts.postprocess if opts.postprocess is not None else data.get("postprocess"),
        max_batch_size=opts.max_batch_size if opts.max_batch_size is not None else mbs,
    )
