"""Import models from files and live objects into the registry as checked ONNX versions, and export them.

Every import converts and verifies in a temporary directory (ONNX checker, shape inference, signature,
parity against the original) and publishes last, so a refused import leaves nothing behind. Frameworks are
imported lazily: the serving core imports this package without torch, Keras or scikit-learn installed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from maas.errors import InvalidArgument
from maas.formats import archive, detect, safety
from maas.formats.atomic import write_atomically
from maas.formats.options import ImportOptions
from maas.formats.publish import Converted, converting, verify_and_publish
from maas.registry import MODEL_ROLE, ModelVersion, Registry

__all__ = ["FORMATS", "ImportOptions", "export", "import_file", "register"]

FORMATS = detect.FORMATS


def import_file(
    registry: Registry, path: str | os.PathLike[str], *, name: str, options: ImportOptions | None = None
) -> ModelVersion:
    """Import a model file (or an ONNX bundle directory) as the next version of `name`."""
    from maas.types import check_name

    check_name(name)
    asked = options or ImportOptions()
    src = Path(path)
    if not src.exists():
        raise InvalidArgument(f"no such file: {src}")
    limit = registry.settings.max_upload_bytes
    from maas.llm import importing as llm_importing

    if asked.format in ("auto", "huggingface", "gguf") and (
        src.suffix.lower() == ".gguf" or llm_importing.looks_like_hf_dir(src)
    ):  # language models stay in their own weights (safetensors), not ONNX
        return llm_importing.import_path(registry, src, name=name, trust=asked.trust, description=asked.description,
                                         tags=asked.tags, aliases=asked.aliases, runtime=asked.runtime)
    safety.check_size(src, limit)
    opts = asked.resolve(sidecar_dir=src if src.is_dir() else src.parent)
    fmt = detect.resolve(src, opts.format)
    with registry.work_dir("maas-import-") as work:
        if fmt == "archive":
            src = archive.extract(src, work / "bundle", limit)
            fmt = detect.resolve(src, opts.format)
        with converting():
            conv = _convert_file(src, fmt, work, opts, limit)
        return verify_and_publish(registry, conv, name, opts, work)


def _convert_file(src: Path, fmt: str, work: Path, opts: ImportOptions, limit: int) -> Converted:
    if fmt == "onnx":
        onnx_path = src if src.is_file() else next(iter(sorted(src.glob("*.onnx"))))
        return Converted(onnx_path=onnx_path, source_format="onnx", source_file=None)
    if fmt == "keras":
        from maas.formats import keras

        return keras.convert(keras.load(src, opts.trust, limit), work, source_file=src)
    if fmt == "torch":
        from maas.formats import torch

        return torch.convert(torch.load_pt2(src, opts.trust, limit), work, opts.sample_input, "torch", src)
    if fmt == "torchscript":
        from maas.formats import torch

        return torch.convert(torch.load_torchscript(src, limit), work, opts.sample_input, "torchscript", src)
    if fmt == "skops":
        from maas.formats import sklearn

        return sklearn.convert(sklearn.load_skops(src, opts.trust), work, "skops", src)
    if fmt in ("tensorflow", "savedmodel"):
        from maas.formats import tensorflow

        return tensorflow.convert_saved_model(src, work, opts.trust, source_file=None)
    if fmt == "tflite":
        from maas.formats import tensorflow

        return tensorflow.convert_tflite(src, work, limit)
    if fmt == "pickle":
        safety.refuse_code_loading(src, f"a pickle file ({src.suffix or 'no extension'})", opts.trust)
        return _convert_object(_load_pickle(src), work, opts, source_file=src)
    raise InvalidArgument(f"unsupported format {fmt!r}")


def _load_pickle(src: Path) -> Any:
    """Only reached with trust=True."""
    if src.suffix.lower() in (".pt", ".pth"):
        from maas.formats import torch

        return torch.load_pickled(src)
    try:
        import joblib

        return joblib.load(src)
    except Exception as exc:
        raise InvalidArgument(f"cannot unpickle {src.name}: {type(exc).__name__}: {str(exc)[:200]}") from None


def register(
    registry: Registry, obj: Any, *, name: str, options: ImportOptions | None = None, tokenizer: Any = None
) -> ModelVersion:
    """Import a live model (torch.nn.Module, Keras model, scikit-learn estimator, onnx.ModelProto), or a
    transformers language model with its tokenizer (`tokenizer=`)."""
    from maas.types import check_name

    check_name(name)
    asked = options or ImportOptions()
    from maas.llm import importing as llm_importing

    if llm_importing.is_transformers_model(obj):
        return llm_importing.register_live(registry, obj, tokenizer, name=name, description=asked.description,
                                           tags=asked.tags, aliases=asked.aliases, runtime=asked.runtime)
    opts = asked.resolve()
    with registry.work_dir("maas-import-") as work:
        with converting():
            conv = _convert_object(obj, work, opts)
        return verify_and_publish(registry, conv, name, opts, work)


def _convert_object(
    obj: Any, work: Path, opts: ImportOptions, source_file: Path | None = None
) -> Converted:
    from maas.formats import keras, sklearn, torch

    if type(obj).__name__ == "ModelProto" and type(obj).__module__.startswith("onnx"):
        path = work / "given.onnx"
        path.write_bytes(obj.SerializeToString())
        return Converted(onnx_path=path, source_format="onnx")
    if sklearn.is_estimator(obj):
        return sklearn.convert(obj, work, "sklearn", source_file)
    if keras.is_model(obj):
        return keras.convert(obj, work, source_file)
    if torch.is_module(obj):
        return torch.convert(obj, work, opts.sample_input, "torch", source_file)
    raise InvalidArgument(
        f"cannot import a {type(obj).__module__}.{type(obj).__qualname__}; expected a torch.nn.Module, "
        "a Keras model, a scikit-learn estimator or an onnx.ModelProto"
    )


def export(registry: Registry, ref: str, format: str, out_path: str | os.PathLike[str]) -> Path:
    """Write a version's model in `format` to `out_path`, verified (digest and ONNX checker) before the
    file appears under its final name."""
    if format == "tflite":
        from maas.formats import tflite_export

        return tflite_export.export(registry, ref, Path(out_path))
    if format != "onnx":
        raise InvalidArgument(f"unknown export format {format!r}; expected onnx or tflite")
    import onnx

    version = registry.get(ref)
    data = registry.read_artifact(version, MODEL_ROLE)
    try:
        onnx.checker.check_model(onnx.load_from_string(data))
    except Exception as exc:
        raise InvalidArgument(f"stored model of {version.ref} fails the ONNX checker: {exc}") from None
    out = Path(out_path)
    if out.is_dir():
        out = out / f"{version.model}-{version.version}.onnx"
    write_atomically(out, data)
    return out
