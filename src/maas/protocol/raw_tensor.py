"""Raw tensor bytes <-> numpy, and the shape checks every decoder runs before it trusts a client's numbers.

Shared by the REST binary extension and gRPC `raw_*_contents`: little-endian, row-major, no padding; BOOL is
one byte; each BYTES element is a 4-byte little-endian length followed by its bytes.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from maas.errors import InvalidArgument
from maas.types import numpy_dtype

# No tensor we accept has more elements than this; checked on the shape before anything is allocated.
MAX_ELEMENTS = 1 << 32
MAX_RANK = 32
_LEN = struct.Struct("<I")


def check_shape(shape: Any, name: str) -> tuple[int, ...]:
    """A client's shape as a tuple of non-negative ints, with its element count bounded."""
    if not isinstance(shape, list | tuple):
        raise InvalidArgument(f"input {name!r}: shape must be a list of integers")
    if len(shape) > MAX_RANK:
        raise InvalidArgument(
            f"input {name!r}: shape has {len(shape)} dimensions, at most {MAX_RANK} allowed"
        )
    count = 1
    for d in shape:
        if type(d) is not int:
            raise InvalidArgument(f"input {name!r}: shape must be a list of integers, got {d!r:.40}")
        if d < 0:
            raise InvalidArgument(f"input {name!r}: shape {list(shape)} has a negative dimension")
        if d > MAX_ELEMENTS:
            raise InvalidArgument(f"input {name!r}: shape {list(shape)} is too large")
        count *= d  # Python ints do not overflow, and each factor is bounded, so this stays small
    if count > MAX_ELEMENTS:
        raise InvalidArgument(f"input {name!r}: shape {list(shape)} has more than {MAX_ELEMENTS} elements")
    return tuple(shape)


def element_count(shape: tuple[int, ...]) -> int:
    count = 1
    for d in shape:
        count *= d
    return count


def check_datatype(datatype: Any, name: str) -> np.dtype[Any]:
    if not isinstance(datatype, str):
        raise InvalidArgument(f"input {name!r}: datatype must be a string")
    try:
        return numpy_dtype(datatype)
    except InvalidArgument as e:
        raise InvalidArgument(f"input {name!r}: {e.message}") from None


def decode_raw(buf: bytes | memoryview, datatype: str, shape: tuple[int, ...], name: str) -> np.ndarray:
    """Raw bytes of one tensor -> array of `shape`; zero-copy (read-only) for fixed-size datatypes."""
    dtype = check_datatype(datatype, name)
    count = element_count(shape)
    if datatype == "BYTES":
        return _decode_bytes(buf, count, name).reshape(shape)
    expected = count * dtype.itemsize
    if len(buf) != expected:
        raise InvalidArgument(
            f"input {name!r}: {len(buf)} bytes of data for shape {list(shape)} of {datatype}, "
            f"expected {expected}"
        )
    if datatype == "BOOL":
        return (np.frombuffer(buf, dtype=np.uint8, count=count) != 0).reshape(shape)
    return np.frombuffer(buf, dtype=dtype.newbyteorder("<"), count=count).reshape(shape)


def _decode_bytes(buf: bytes | memoryview, count: int, name: str) -> np.ndarray:
    size = len(buf)
    if count * _LEN.size > size:
        raise InvalidArgument(f"input {name!r}: {size} bytes cannot hold {count} BYTES elements")
    out = np.empty(count, dtype=object)
    view = memoryview(buf)
    pos = 0
    for i in range(count):
        if pos + _LEN.size > size:
            raise InvalidArgument(f"input {name!r}: BYTES data ends inside the length of element {i}")
        (n,) = _LEN.unpack_from(view, pos)
        pos += _LEN.size
        if n > size - pos:
            raise InvalidArgument(
                f"input {name!r}: BYTES element {i} claims {n} bytes, only {size - pos} left"
            )
        out[i] = bytes(view[pos : pos + n])
        pos += n
    if pos != size:
        raise InvalidArgument(f"input {name!r}: {size - pos} bytes left over after {count} BYTES elements")
    return out


def encode_raw(data: np.ndarray, datatype: str) -> bytes:
    """An array -> its raw bytes (the inverse of `decode_raw`)."""
    if datatype == "BYTES":
        return encode_bytes_elements(data)
    if datatype == "BOOL":
        return np.ascontiguousarray(data, dtype=np.bool_).tobytes()
    dtype = numpy_dtype(datatype).newbyteorder("<")
    return np.ascontiguousarray(data, dtype=dtype).tobytes()


def encode_bytes_elements(data: np.ndarray) -> bytes:
    parts: list[bytes] = []
    for item in np.asarray(data, dtype=object).ravel():
        b = as_bytes(item)
        parts.append(_LEN.pack(len(b)))
        parts.append(b)
    return b"".join(parts)


def as_bytes(item: Any) -> bytes:
    """One BYTES element as bytes (models may hand back str or numpy string scalars)."""
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, np.bytes_ | bytearray | memoryview):
        return bytes(item)
    return str(item).encode("utf-8")
