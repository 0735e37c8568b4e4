"""Broken archives and hostile external-data locations: each import is a 400 (InvalidArgument) that names the
problem, never an OSError or zipfile error escaping as a 500; nothing is registered."""

from __future__ import annotations

import onnx
import pytest

from maas import formats
from maas.errors import InvalidArgument
from maas.testing import hostile_archives

from .conftest import assert_empty
from .test_onnx_file import _linear


@pytest.mark.parametrize("filename", sorted(hostile_archives.cases()))
def test_broken_archive_is_refused_naming_the_problem(registry, tmp_path, filename: str) -> None:
    data, fragment = hostile_archives.cases()[filename]
    path = tmp_path / filename
    path.write_bytes(data)
    with pytest.raises(InvalidArgument, match=fragment):
        formats.import_file(registry, path, name="m")
    assert_empty(registry)


def test_the_good_archive_they_are_made_from_imports(registry, tmp_path) -> None:
    path = tmp_path / "good.zip"
    path.write_bytes(hostile_archives.good_zip())
    assert formats.import_file(registry, path, name="m").version == 1


@pytest.mark.parametrize("location", ["weights\x00.bin", "w" * 5000, "a/" + "b" * 300, "", "line\nbreak.bin"])
def test_unusable_external_data_locations_are_refused(registry, tmp_path, location: str) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    onnx.save(_linear(), bundle / "model.onnx", save_as_external_data=True, location="weights.bin",
              size_threshold=0)
    model = onnx.load(bundle / "model.onnx", load_external_data=False)
    for entry in model.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = location
    onnx.save(model, bundle / "model.onnx")
    with pytest.raises(InvalidArgument, match="invalid location"):
        formats.import_file(registry, bundle, name="m")
    assert_empty(registry)


def test_deep_config_json_in_a_keras_file_is_refused(registry, tmp_path) -> None:
    import zipfile

    path = tmp_path / "deep.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", "[" * 30_000)
        zf.writestr("metadata.json", "{}")
        zf.writestr("model.weights.h5", b"")
    with pytest.raises(InvalidArgument, match="nests deeper"):
        formats.import_file(registry, path, name="m", options=formats.ImportOptions(format="keras"))
