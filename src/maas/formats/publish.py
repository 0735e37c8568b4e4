"""One import, in the order that keeps the registry clean: convert and verify everything in a temporary
directory (ONNX checks, signature, parity), and publish only when all of it passed."""

from __future__ import annotations

import io
import logging
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maas.config import DEFAULT_MAX_BATCH_SIZE
from maas.errors import InvalidArgument, MaasError
from maas.formats import onnx_file, output_names, parity, signature
from maas.formats.options import ImportOptions
from maas.registry import MODEL_ROLE, ModelVersion, Registry

log = logging.getLogger(__name__)

# The frameworks' exporters keep global state (tracing, op registries), so conversions run one at a time.
_CONVERT_LOCK = threading.RLock()


@dataclass
class Converted:
    """What an importer hands back: an ONNX file in the work dir and how to check it against the original."""

    onnx_path: Path
    source_format: str
    reference: parity.Reference | None = None  # runs the original model; None when the ONNX file is it
    samples: dict[str, np.ndarray] | None = None  # inputs the importer knows are valid for the model
    sample_factory: Callable[[Any], dict[str, np.ndarray]] | None = None
    rules: Sequence[parity.OutputRule] | None = None
    labels: list[str] | None = None
    source_file: Path | None = None
    atol: float = parity.ATOL
    rtol: float = parity.RTOL
    extra_config: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the importer changed or could not, kept in parity
    output_names: list[str] | None = None  # the source model's own output names, when it has them


@contextmanager
def converting() -> Iterator[None]:
    """Serialize conversions and route the frameworks' warnings to the log instead of the caller."""
    # torch.onnx prints progress on stdout, which would corrupt `maas import --json`.
    printed = io.StringIO()
    with _CONVERT_LOCK, warnings.catch_warnings(record=True) as caught, redirect_stdout(printed):
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for w in caught:
                log.debug("converter warning: %s: %s", w.category.__name__, w.message)
            if printed.getvalue():
                log.debug("converter output: %s", printed.getvalue())


def _source_role(path: Path) -> str:
    ext = "".join(c for c in path.suffix.lower().lstrip(".") if c.isalnum() or c in "._-") or "bin"
    return f"source.{ext}"


def verify_and_publish(
    registry: Registry, conv: Converted, name: str, opts: ImportOptions, work: Path
) -> ModelVersion:
    """Check the converted model, compare it with the original, then publish `name`'s next version (the only
    registry write); `opts` has been resolved."""
    src_model = output_names.rename_outputs(onnx_file.load(conv.onnx_path), conv.output_names)
    final_path = work / "final" / MODEL_ROLE
    final_path.parent.mkdir(exist_ok=True)
    model = onnx_file.finalize(src_model, final_path)
    sig = signature.extract(model)

    if opts.sample_input is not None:
        samples = parity.as_inputs(opts.sample_input, sig)
    elif conv.samples is not None:
        samples = conv.samples
    elif conv.sample_factory is not None:
        samples = conv.sample_factory(sig)
    else:
        samples = parity.generate(sig)

    sess = onnx_file.session(final_path)
    names = [o.name for o in sess.get_outputs()]
    try:
        actual = sess.run(None, samples)
    except Exception as exc:  # onnxruntime's errors are untyped
        raise InvalidArgument(
            f"the ONNX model fails on sample inputs: {str(exc).splitlines()[0][:300]}"
        ) from None
    n = int(next(iter(samples.values())).shape[0]) if sig.batch_axis and samples else 1
    if conv.reference is None:
        report = parity.compare(actual, actual, names, samples=n)
        report["reference"] = "onnx"
    else:
        with converting():
            try:
                reference = list(conv.reference(samples))
            except MaasError:
                raise
            except Exception as exc:
                raise InvalidArgument(
                    f"the original model fails on the sample inputs: {type(exc).__name__}: {str(exc)[:300]}"
                ) from None
        report = parity.compare(
            reference, actual, names, conv.rules, atol=conv.atol, rtol=conv.rtol, samples=n
        )
        report["reference"] = conv.source_format
    if conv.notes:
        report["notes"] = list(conv.notes)
    if not report["passed"] and not opts.allow_mismatch:
        raise InvalidArgument(parity.describe_failure(report))
    sig = signature.with_observed(sig, actual)

    config: dict[str, Any] = dict(conv.extra_config)
    labels = opts.labels if opts.labels is not None else conv.labels
    if labels is not None:
        config["labels"] = labels
    if opts.max_batch_size is not None:
        config["max_batch_size"] = opts.max_batch_size if sig.batch_axis else 0
    else:
        config["max_batch_size"] = DEFAULT_MAX_BATCH_SIZE if sig.batch_axis else 0
    if opts.preprocess:
        config["preprocess"] = opts.preprocess
    if opts.postprocess:
        config["postprocess"] = opts.postprocess

    files: dict[str, Any] = {MODEL_ROLE: final_path}
    if conv.source_file is not None and conv.source_file.is_file():
        files[_source_role(conv.source_file)] = conv.source_file
    log.info(
        "publishing %s (%s, parity max abs err %.3g)", name, conv.source_format, report["max_abs_err"]
    )
    return registry.publish(
        name,
        files,
        description=opts.description or "",
        tags=dict(opts.tags),
        signature=sig,
        source_format=conv.source_format,
        config=config,
        parity=report,
        aliases=opts.aliases,
    )
