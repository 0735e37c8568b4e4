"""Archive and size checks made before anything is deserialized."""

from __future__ import annotations

import zipfile

import pytest

from maas.errors import InvalidArgument, PayloadTooLarge
from maas.formats import safety


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/../../x", "C:/x", "..\\x"])
def test_escaping_member_names_are_refused(name):
    with pytest.raises(InvalidArgument, match="unsafe archive entry"):
        safety.check_member_name(name, "a.zip")


def test_declared_size_over_the_limit_is_refused(tmp_path):
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("big", b"x" * 1000)
    with pytest.raises(PayloadTooLarge):
        safety.check_zip(path, limit=100)
    assert safety.extract_zip(path, tmp_path / "out", limit=10_000).joinpath("big").stat().st_size == 1000


def test_not_a_zip(tmp_path):
    (tmp_path / "a.zip").write_bytes(b"nope")
    with pytest.raises(InvalidArgument, match="not a valid zip"):
        safety.check_zip(tmp_path / "a.zip", limit=100)
