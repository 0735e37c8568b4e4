"""One `ImportOptions` object carries an import's options through every door (issue #17: the list was spelled
out in formats twice, options.py, the jobs handler, the upload route and the CLI, and drifted)."""

from __future__ import annotations

import inspect
from dataclasses import fields

import pytest

from maas import formats
from maas.errors import InvalidArgument
from maas.formats import ImportOptions

OPTION_NAMES = {f.name for f in fields(ImportOptions)}


@pytest.mark.parametrize("fn", [formats.import_file, formats.register])
def test_the_importers_take_the_object_not_its_fields(fn) -> None:
    params = set(inspect.signature(fn).parameters)
    assert "options" in params and not params & OPTION_NAMES


def test_every_option_but_the_sample_survives_a_background_job() -> None:
    asked = ImportOptions(format="keras", description="d", tags={"k": "v"}, aliases=("production",), labels=["a"],
                          trust=True, allow_mismatch=True, preprocess=[{"op": "scale", "factor": 2.0}],
                          postprocess=[{"op": "softmax"}], max_batch_size=4, runtime="onnxruntime-genai")
    assert {f.name for f in fields(asked) if getattr(asked, f.name) == f.default} == {"sample_input"}
    params = {"blob": "ab" * 32, "extension": ".keras", "name": "m", **asked.to_params()}
    assert ImportOptions.from_params(params) == asked  # the job's own keys are not options


def test_resolve_validates_once_for_every_door() -> None:
    with pytest.raises(InvalidArgument, match="max_batch_size"):
        ImportOptions(max_batch_size=-1).resolve()
    with pytest.raises(InvalidArgument, match="sample_input"):
        ImportOptions(sample_input=[1.0]).to_params()
    with pytest.raises(InvalidArgument, match="aliases"):
        ImportOptions.from_params({"aliases": "production"})
    assert ImportOptions(labels=("a", "b"), aliases=("x",)).resolve().labels == ["a", "b"]


def test_the_sdk_refuses_an_option_that_does_not_exist(tmp_path) -> None:
    import maas

    with pytest.raises(TypeError, match="sampel_input"):
        maas.import_file(tmp_path / "m.onnx", name="m", registry=object(), sampel_input=1)  # type: ignore[arg-type]
