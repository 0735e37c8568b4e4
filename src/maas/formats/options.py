"""What an import is asked to do: the caller's options merged over the defaults of a `maas.yaml` found
beside the model file (the caller wins), with labels and processing steps validated up front."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
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
    name: str
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    labels: list[str] | None = None
    trust: bool = False
    allow_mismatch: bool = False
    sample_input: Any = None
    preprocess: list[dict[str, Any]] | None = None
    postprocess: list[dict[str, Any]] | None = None
    max_batch_size: int | None = None


def build(
    name: str,
    *,
    description: str = "",
    tags: Mapping[str, str] | None = None,
    aliases: Iterable[str] = (),
    labels: Iterable[str] | str | Path | None = None,
    trust: bool = False,
    allow_mismatch: bool = False,
    sample_input: Any = None,
    preprocess: Any = None,
    postprocess: Any = None,
    max_batch_size: int | None = None,
    sidecar_dir: Path | None = None,
) -> ImportOptions:
    """Validate the caller's options and fill the gaps from `sidecar_dir/maas.yaml`."""
    if max_batch_size is not None and (not isinstance(max_batch_size, int) or max_batch_size < 0):
        raise InvalidArgument(f"max_batch_size must be a non-negative integer, not {max_batch_size!r}")
    opts = ImportOptions(
        name=name,
        description=description or None,
        tags=check_tags(dict(tags or {})),
        aliases=tuple(check_alias(a) for a in aliases),
        labels=read_labels(labels) if labels is not None else None,
        trust=bool(trust),
        allow_mismatch=bool(allow_mismatch),
        sample_input=sample_input,
        preprocess=preprocess,
        postprocess=postprocess,
        max_batch_size=max_batch_size,
    )
    if sidecar_dir is not None and (sidecar_dir / SIDECAR).is_file():
        opts = _merge_sidecar(opts, sidecar_dir / SIDECAR)
    pre, post = processing.validate(opts.preprocess, opts.postprocess)
    return replace(opts, preprocess=pre, postprocess=post)


def read_labels(labels: Iterable[str] | str | Path) -> list[str]:
    """A list of labels, or a text file with one label per line (blank lines at the end ignored)."""
    if isinstance(labels, str | Path):
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
        description=opts.description if opts.description is not None else data.get("description"),
        tags={**check_tags({str(k): str(v) for k, v in tags.items()}), **opts.tags},
        labels=opts.labels if opts.labels is not None else (read_labels(labels) if labels else None),
        preprocess=opts.preprocess if opts.preprocess is not None else data.get("preprocess"),
        postprocess=opts.postprocess if opts.postprocess is not None else data.get("postprocess"),
        max_batch_size=opts.max_batch_size if opts.max_batch_size is not None else mbs,
    )
