"""tus `Upload-Metadata` both ways, and the fields it gives the importer (the multipart route's names)."""

from __future__ import annotations

import base64

import pytest

from maas.errors import InvalidArgument
from maas.server.uploads_api import _fields, encode_metadata, parse_metadata


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_round_trip_and_a_key_without_value() -> None:
    header = f"name {b64('digits')},filename {b64('model.onnx')},flag, tag {b64('a=1' + chr(10) + 'b=2')}"
    meta = parse_metadata(header)
    assert meta == {"name": "digits", "filename": "model.onnx", "flag": "", "tag": "a=1\nb=2"}
    assert parse_metadata(encode_metadata(meta)) == meta
    fields = _fields(meta)
    assert fields.many("tag") == ["a=1", "b=2"] and fields.one("name") == "digits"
    assert parse_metadata(None) == {} and parse_metadata("  ") == {}


@pytest.mark.parametrize("header", [
    "name", "name x y", "name !!!", f"a {b64('1')},a {b64('2')}", ",", "k\u00e9y " + b64("x"),
    ",".join(f"k{i}" for i in range(40)), "name " + base64.b64encode(b"\xff\xfe").decode(),
    "name " + b64("x" * 20_000),
])
def test_bad_metadata_is_invalid_argument(header: str) -> None:
    if header == "name":
        assert parse_metadata(header) == {"name": ""}  # a key alone is allowed by tus
        return
    with pytest.raises(InvalidArgument):
        parse_metadata(header)
