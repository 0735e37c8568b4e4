"""ONNX bundles as .zip / .tar.gz: imported like a directory; escaping names, links and bombs refused
before anything is written."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile

import numpy as np
import onnx
import pytest

from maas import formats
from maas.errors import InvalidArgument, PayloadTooLarge
from maas.formats import archive

from .conftest import assert_empty
from .test_onnx_file import _linear


@pytest.fixture
def bundle(tmp_path):
    d = tmp_path / "bundle"
    d.mkdir()
    onnx.save(_linear(), d / "model.onnx", save_as_external_data=True, location="weights.bin", size_threshold=0)
    return d


def _zip(bundle, path, prefix=""):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in bundle.iterdir():
            zf.write(f, prefix + f.name)
    return path


def _tar(bundle, path, prefix=""):
    with tarfile.open(path, "w:gz") as tf:
        for f in bundle.iterdir():
            tf.add(f, prefix + f.name)
    return path


@pytest.mark.parametrize("make,name", [(_zip, "b.zip"), (_tar, "b.tar.gz"), (_tar, "b.tgz")])
def test_archived_bundle_imports_like_its_directory(registry, tmp_path, bundle, make, name):
    path = make(bundle, tmp_path / name, prefix="inner/")
    v = formats.import_file(registry, path, name="linear", options=formats.ImportOptions(format="onnx"))
    assert v.source_format == "onnx" and v.parity["passed"]
    stored = onnx.load_from_string(registry.read_artifact(v))
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in stored.graph.initializer)
    np.testing.assert_array_equal(
        onnx.numpy_helper.to_array(stored.graph.initializer[0]), np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    )


def _tar_with(path, member, data=b""):
    with tarfile.open(path, "w:gz") as tf:
        tf.addfile(member, io.BytesIO(data) if data else None)
    return path


@pytest.mark.parametrize("entry", ["../evil.onnx", "/tmp/evil.onnx", "a/../../evil.onnx"])
def test_escaping_entries_are_refused(registry, tmp_path, entry):
    info = tarfile.TarInfo(entry)
    info.size = 3
    _tar_with(tmp_path / "t.tar.gz", info, b"abc")
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as zf:
        zf.writestr(zipfile.ZipInfo(entry), b"abc")
    for name in ("t.tar.gz", "z.zip"):
        with pytest.raises(InvalidArgument, match="unsafe archive entry"):
            formats.import_file(registry, tmp_path / name, name="evil")
    assert not (tmp_path / "evil.onnx").exists()
    assert_empty(registry)


def test_symlinks_are_refused(registry, tmp_path):
    info = tarfile.TarInfo("model.onnx")
    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    _tar_with(tmp_path / "t.tar.gz", info)
    with pytest.raises(InvalidArgument, match="link or special file"):
        formats.import_file(registry, tmp_path / "t.tar.gz", name="evil")
    link = zipfile.ZipInfo("model.onnx")
    link.external_attr = (0o120777 << 16)
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as zf:
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(InvalidArgument, match="symbolic link"):
        formats.import_file(registry, tmp_path / "z.zip", name="evil")
    assert_empty(registry)


def test_decompression_bombs_are_refused(registry, tmp_path):
    zeros = b"\0" * (8 << 20)
    with zipfile.ZipFile(tmp_path / "z.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model.onnx", zeros)
    with pytest.raises(InvalidArgument, match="decompression bomb"):
        formats.import_file(registry, tmp_path / "z.zip", name="bomb")
    info = tarfile.TarInfo("model.onnx")
    info.size = len(zeros)
    _tar_with(tmp_path / "t.tar.gz", info, zeros)
    with pytest.raises(InvalidArgument, match="decompression bomb"):
        formats.import_file(registry, tmp_path / "t.tar.gz", name="bomb")
    assert_empty(registry)


def test_gzip_past_the_limit_stops_while_counting(tmp_path):
    (tmp_path / "t.tar.gz").write_bytes(gzip.compress(b"\0" * 4096))
    with pytest.raises(PayloadTooLarge):
        archive.extract(tmp_path / "t.tar.gz", tmp_path / "out", limit=1000)
    assert not (tmp_path / "out").exists()


def test_archive_without_a_model_is_refused(registry, tmp_path):
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(InvalidArgument, match="exactly one .onnx"):
        formats.import_file(registry, tmp_path / "z.zip", name="empty")
    assert_empty(registry)
