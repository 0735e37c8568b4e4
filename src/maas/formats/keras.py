"""Keras 3 models (`.keras` zips, legacy `.h5`, or live) on the torch backend, no TensorFlow: the saved
config is read and Lambda layers refused before Keras deserializes anything, then loaded in safe mode
and exported to ONNX with a dynamic batch."""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from maas import json_limits
from maas.errors import InvalidArgument, PayloadTooLarge
from maas.formats import safety
from maas.formats.publish import Converted

H5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _keras() -> Any:
    """Import keras on the torch backend; refuse a process where Keras already runs on another one."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError:
        raise InvalidArgument("Keras models need the keras extra: pip install 'maas[keras]'") from None
    if keras.backend.backend() != "torch":
        raise InvalidArgument(
            f"Keras runs on the {keras.backend.backend()!r} backend here; maas needs 'torch'"
        )
    return keras


def is_model(obj: Any) -> bool:
    mod = type(obj).__module__
    if not mod.startswith("keras"):
        return False
    keras = _keras()
    return isinstance(obj, keras.Model)


def _saved_config(path: Path, limit: int) -> Any:
    """The model config JSON, read without deserializing any layer."""
    with path.open("rb") as f:
        head = f.read(8)
    if head.startswith(b"PK"):
        safety.check_zip(path, limit)
        try:
            with zipfile.ZipFile(path) as zf:
                return json_limits.loads(zf.read("config.json"), f"{path.name}: config.json",
                                         json_limits.MAX_FILE_DEPTH)
        except (KeyError, ValueError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError) as exc:
            raise InvalidArgument(f"{path.name} is not a valid .keras file ({type(exc).__name__})") from None
    if head == H5_MAGIC:
        import h5py

        try:
            with h5py.File(path, "r") as f:
                check_h5(f, path.name, limit)
                raw = f.attrs.get("model_config")
        except OSError as exc:
            raise InvalidArgument(f"{path.name} is not a valid HDF5 file ({str(exc)[:120]})") from None
        if raw is None:
            raise InvalidArgument(f"{path.name} holds only weights (no model_config); save the whole model")
        return json_limits.loads(raw, f"{path.name}: model_config", json_limits.MAX_FILE_DEPTH)
    raise InvalidArgument(
        f"{path.name} is not a Keras model file (expected a .keras zip or an HDF5 .h5 file)"
    )


def check_h5(f: Any, filename: str, limit: int) -> None:
    """Bound what Keras will read from an HDF5 file before it reads anything: no links or storage outside
    the file, declared dataset sizes under the limit, and no chunk compressed past the bomb ratio."""
    import h5py

    total = 0
    problems: list[str] = []

    def visit(name: str, link: Any) -> None:
        nonlocal total
        if isinstance(link, h5py.ExternalLink):
            problems.append(f"{name!r} links to another file")
            return
        if not isinstance(link, h5py.HardLink):
            return
        obj = f.get(name)
        if not isinstance(obj, h5py.Dataset):
            return
        if obj.is_virtual or obj.external:
            problems.append(f"dataset {name!r} keeps its data outside the file")
            return
        nbytes = int(obj.size or 0) * obj.dtype.itemsize
        total += nbytes
        stored = obj.id.get_storage_size()
        if nbytes > safety.BOMB_MIN_BYTES and nbytes // max(stored, 1) > safety.MAX_RATIO:
            problems.append(f"dataset {name!r} expands {nbytes // max(stored, 1)}x (a decompression bomb?)")

    f.visititems_links(visit)
    if problems:
        raise InvalidArgument(f"refusing {filename}: {problems[0]}")
    if total > limit:
        raise PayloadTooLarge(f"{filename} declares {total} bytes of weights, over {safety.limit_text(limit)}")


def _lambda_layers(config: Any) -> list[str]:
    """Names of Lambda layers anywhere in a (nested) model config."""
    found: list[str] = []
    if isinstance(config, dict):
        if config.get("class_name") == "Lambda":
            found.append(str((config.get("config") or {}).get("name", "lambda")))
        for v in config.values():
            found += _lambda_layers(v)
    elif isinstance(config, list):
        for v in config:
            found += _lambda_layers(v)
    return found


def load(path: Path, trust: bool, limit: int) -> Any:
    config = _saved_config(path, limit)
    lambdas = _lambda_layers(config)
    if lambdas:
        safety.refuse_code_loading(
            path, f"a Keras model with Lambda layers ({', '.join(lambdas[:3])})", trust
        )
    keras = _keras()
    try:
        return keras.models.load_model(path, safe_mode=not trust, compile=False)
    except Exception as exc:  # Keras raises ValueError/TypeError/OSError for bad or unknown content
        raise InvalidArgument(f"Keras cannot load {path.name}: {str(exc).splitlines()[0][:300]}") from None


def convert(model: Any, work: Path, source_file: Path | None = None) -> Converted:
    """Export through Keras' own ONNX exporter (dynamic batch) after one call to build the graph."""
    _keras()
    specs = list(model.inputs) if getattr(model, "inputs", None) else None
    if not specs:
        raise InvalidArgument("the Keras model has no defined inputs; build it with an Input or input_shape")
    rng = np.random.default_rng(0)
    samples = []
    for spec in specs:
        shape = tuple(4 if d is None else int(d) for d in spec.shape)
        dtype = np.dtype(str(spec.dtype))
        arr = (
            rng.standard_normal(shape).astype(dtype)
            if dtype.kind == "f"
            else rng.integers(0, 5, shape).astype(dtype)
        )
        samples.append(arr)
    model(samples[0] if len(samples) == 1 else samples)  # Keras refuses to export a never-called model
    out = work / "keras.onnx"
    try:
        model.export(str(out), format="onnx", verbose=False)
    except Exception as exc:
        raise InvalidArgument(
            f"Keras cannot export the model to ONNX: {str(exc).splitlines()[0][:300]}"
        ) from None

    def reference(inputs: dict[str, np.ndarray]) -> list[Any]:
        arrays = list(inputs.values())
        result = model(arrays[0] if len(arrays) == 1 else arrays, training=False)
        results = result if isinstance(result, list | tuple) else [result]
        return [np.asarray(r.detach().cpu().numpy() if hasattr(r, "detach") else r) for r in results]

    return Converted(onnx_path=out, source_format="keras", reference=reference, source_file=source_file,
                     output_names=_output_layer_names(model))


def _output_layer_names(model: Any) -> list[str] | None:
    """The names of the layers that produce the outputs (`dense`, `probs`…), the ONNX export's being generated."""
    try:
        return [str(t._keras_history.operation.name) for t in model.outputs]
    except (AttributeError, TypeError):
        return None
