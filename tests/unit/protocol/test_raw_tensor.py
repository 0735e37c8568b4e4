"""Raw tensor bytes: round trips for every datatype, and hostile byte counts and shapes."""

import struct

import numpy as np
import pytest

from maas.errors import InvalidArgument
from maas.protocol import raw_tensor

SAMPLES = {
    "BOOL": np.array([[True, False, True]]),
    "UINT8": np.array([[0, 7, 255]], dtype=np.uint8),
    "UINT16": np.array([[0, 7, 65535]], dtype=np.uint16),
    "UINT32": np.array([[0, 7, 2**32 - 1]], dtype=np.uint32),
    "UINT64": np.array([[0, 7, 2**64 - 1]], dtype=np.uint64),
    "INT8": np.array([[-128, 0, 127]], dtype=np.int8),
    "INT16": np.array([[-(2**15), 0, 2**15 - 1]], dtype=np.int16),
    "INT32": np.array([[-(2**31), 0, 2**31 - 1]], dtype=np.int32),
    "INT64": np.array([[-(2**63), 0, 2**63 - 1]], dtype=np.int64),
    "FP16": np.array([[-1.5, 0.0, 65504.0]], dtype=np.float16),
    "FP32": np.array([[-1.5, 0.25, 3.4e38]], dtype=np.float32),
    "FP64": np.array([[-1.5, 0.25, 1e300]], dtype=np.float64),
    "BYTES": np.array([[b"", b"abc", "é".encode()]], dtype=object),
}


@pytest.mark.parametrize("datatype", sorted(SAMPLES))
def test_round_trip(datatype):
    arr = SAMPLES[datatype]
    buf = raw_tensor.encode_raw(arr, datatype)
    back = raw_tensor.decode_raw(buf, datatype, arr.shape, "x")
    assert back.shape == arr.shape
    assert back.tolist() == arr.tolist()


def test_little_endian_layout():
    assert raw_tensor.encode_raw(np.array([1], dtype=np.int32), "INT32") == b"\x01\x00\x00\x00"
    assert raw_tensor.encode_raw(np.array([b"ab"], dtype=object), "BYTES") == b"\x02\x00\x00\x00ab"
    assert raw_tensor.encode_raw(np.array([True, False]), "BOOL") == b"\x01\x00"


@pytest.mark.parametrize(
    "shape, message",
    [
        ([-1, 3], "negative"),
        ([2**31, 2**31, 2**31], "too large|more than"),
        ([1.5], "integers"),
        ([True], "integers"),
        ("12", "list"),
        ([1] * 40, "dimensions"),
        ([2**40], "too large"),
    ],
)
def test_bad_shapes(shape, message):
    with pytest.raises(InvalidArgument, match=message):
        raw_tensor.check_shape(shape, "x")


def test_byte_count_must_match_shape():
    with pytest.raises(InvalidArgument, match="expected 12"):
        raw_tensor.decode_raw(b"\0" * 8, "FP32", (3,), "x")


def test_huge_shape_is_refused_before_allocating():
    with pytest.raises(InvalidArgument, match="expected"):
        raw_tensor.decode_raw(b"", "FP64", (2**16, 2**16), "x")
    with pytest.raises(InvalidArgument, match="cannot hold"):
        raw_tensor.decode_raw(b"\0" * 8, "BYTES", (2**32,), "x")


@pytest.mark.parametrize(
    "buf, count, message",
    [
        (struct.pack("<I", 5) + b"abc", 1, "claims 5 bytes"),
        (struct.pack("<I", 2**32 - 1), 1, "claims"),
        (struct.pack("<I", 1) + b"ab", 1, "left over"),
        (struct.pack("<I", 0) + b"\x01\x00", 2, "cannot hold|ends inside"),
    ],
)
def test_bad_bytes_prefixes(buf, count, message):
    with pytest.raises(InvalidArgument, match=message):
        raw_tensor.decode_raw(buf, "BYTES", (count,), "x")


def test_unknown_and_bf16_datatypes():
    with pytest.raises(InvalidArgument, match="unknown datatype"):
        raw_tensor.decode_raw(b"", "FP8", (0,), "x")
    with pytest.raises(InvalidArgument, match="BF16"):
        raw_tensor.decode_raw(b"", "BF16", (0,), "x")
