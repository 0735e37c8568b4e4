"""Damaged and contradictory model archives, built byte by byte, for tests (ours and users') that check an
importer refuses them with a clear message: a bad CRC, a wrong central-directory size, the encrypted flag, an
unknown compression method, local and central names that differ, and a file that is also a folder."""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile

_NAME = "model.onnx"
_LOCAL = 0  # a lone member's local header starts the file
_CENTRAL_SIG = b"PK\x01\x02"


def tiny_onnx() -> bytes:
    """A valid one-node ONNX model (y = x · w), small enough to be stored uncompressed."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 10, "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], [w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def good_zip(entries: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in (entries or {_NAME: tiny_onnx()}).items():
            zf.writestr(name, data)
    return buf.getvalue()


def _patch(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value):]


def _central(data: bytes) -> int:
    return data.index(_CENTRAL_SIG)


def bad_crc() -> bytes:
    data = good_zip()
    at = _LOCAL + 30 + len(_NAME) + 16  # a byte inside the stored member's data
    return _patch(data, at, bytes([data[at] ^ 0xFF]))


def wrong_central_directory_size() -> bytes:
    data = good_zip()
    eocd = data.rindex(b"PK\x05\x06")
    (size,) = struct.unpack_from("<I", data, eocd + 12)
    return _patch(data, eocd + 12, struct.pack("<I", size + 7))


def encrypted_flag() -> bytes:
    data = good_zip()
    data = _patch(data, _LOCAL + 6, struct.pack("<H", 0x1))
    return _patch(data, _central(data) + 8, struct.pack("<H", 0x1))


def unknown_compression(method: int = 99) -> bytes:
    data = good_zip()
    data = _patch(data, _LOCAL + 8, struct.pack("<H", method))
    return _patch(data, _central(data) + 10, struct.pack("<H", method))


def names_differ() -> bytes:
    """The local header says `modeX.onnx`, the central directory `model.onnx`."""
    return _patch(good_zip(), _LOCAL + 30 + 4, b"X")


def zip_file_and_folder() -> bytes:
    return good_zip({"a": b"a file", f"a/{_NAME}": tiny_onnx()})


def tar_file_and_folder() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in (("a", b"a file"), (f"a/{_NAME}", tiny_onnx())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# file name -> (bytes, a fragment the refusal must contain)
CASES: dict[str, tuple[bytes, str]] = {}


def cases() -> dict[str, tuple[bytes, str]]:
    """Every hostile archive with the words its 400 must name (built on first use: it needs onnx)."""
    if not CASES:
        CASES.update({
            "bad-crc.zip": (bad_crc(), "CRC"),
            "central-size.zip": (wrong_central_directory_size(), "zip"),
            "encrypted.zip": (encrypted_flag(), "encrypted"),
            "compression.zip": (unknown_compression(), "compression method 99"),
            "names-differ.zip": (names_differ(), "differ"),
            "file-and-folder.zip": (zip_file_and_folder(), "both a file and a folder"),
            "file-and-folder.tar": (tar_file_and_folder(), "both a file and a folder"),
        })
    return CASES
