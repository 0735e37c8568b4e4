"""Which importer a file needs: from its extension and first bytes, so a misnamed or damaged file, or a
`--format` that does not match the content, is answered with one clear sentence."""

from __future__ import annotations

import zipfile
from pathlib import Path

from maas.errors import InvalidArgument
from maas.formats import safety

FORMATS = (
    "auto", "onnx", "keras", "torch", "torchscript", "sklearn", "skops", "tflite", "savedmodel", "tensorflow",
    "huggingface", "gguf",
)
_BY_SUFFIX = {
    ".onnx": "onnx",
    ".keras": "keras",
    ".h5": "keras",
    ".hdf5": "keras",
    ".pt2": "torch",
    ".skops": "skops",
    ".tflite": "tflite",
}
H5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _head(path: Path, n: int = 16) -> bytes:
    with path.open("rb") as f:
        return f.read(n)


def sniff(path: Path) -> str:
    """The format a file's content says it is: onnx, keras, torch, torchscript, skops, pickle, tflite…"""
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "tensorflow"
        onnx_files = sorted(path.glob("*.onnx"))
        if len(onnx_files) == 1:
            return "onnx"
        raise InvalidArgument(f"{path.name}/ is not a model bundle (expected exactly one .onnx file inside)")
    if path.name.lower().endswith((".zip", ".tar.gz", ".tgz", ".tar")):
        return "archive"
    suffix = path.suffix.lower()
    head = _head(path)
    if suffix in safety.PICKLE_SUFFIXES:
        return "pickle"
    if suffix in (".pt", ".pth", ".pt2"):
        if head.startswith(b"PK"):
            from maas.formats.torch import zip_kind

            kind = zip_kind(path)
            if kind == "pt2":
                return "torch"
            if kind == "torchscript":
                return "torchscript"
            if kind == "pickle":
                return "pickle"
            raise InvalidArgument(f"{path.name} is not a PyTorch archive this server can read")
        if safety.is_pickle(head):
            return "pickle"
        raise InvalidArgument(f"{path.name} is not a valid PyTorch file (truncated or corrupt?)")
    if suffix == ".keras":
        if not head.startswith(b"PK"):
            raise InvalidArgument(f"{path.name} is not a valid .keras file (not a zip archive)")
        return "keras"
    if suffix in (".h5", ".hdf5"):
        if head[:8] != H5_MAGIC:
            raise InvalidArgument(f"{path.name} is not a valid HDF5 file (truncated or corrupt?)")
        return "keras"
    if suffix == ".skops":
        if not head.startswith(b"PK") or not zipfile.is_zipfile(path):
            raise InvalidArgument(f"{path.name} is not a valid .skops file (not a zip archive)")
        return "skops"
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    if safety.is_pickle(head):
        return "pickle"
    if head[:8] == H5_MAGIC:
        return "keras"
    raise InvalidArgument(
        f"cannot tell the format of {path.name}; pass --format ({', '.join(FORMATS[1:])})"
    )


def resolve(path: Path, requested: str) -> str:
    """The importer to use: what the content says, checked against `requested` when one was given."""
    if requested not in FORMATS and requested != "pickle":
        raise InvalidArgument(f"unknown format {requested!r}; expected one of {', '.join(FORMATS)}")
    found = sniff(path)
    if requested == "savedmodel":
        requested = "tensorflow"
    if requested == "auto" or requested == found:
        return found
    compatible = {
        ("torch", "torchscript"),
        ("torchscript", "torch"),
        ("sklearn", "skops"),
        ("sklearn", "pickle"),
        ("torch", "pickle"),
        ("onnx", "archive"),
        ("tensorflow", "archive"),
    }
    if (requested, found) in compatible:
        return found
    raise InvalidArgument(f"{path.name} does not look like format {requested!r} (its content says {found!r})")
