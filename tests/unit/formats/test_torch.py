"""PyTorch importer: live modules, torch.export .pt2 archives, TorchScript, and unsafe archives refused."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from maas import formats
from maas.errors import InvalidArgument

from .conftest import assert_empty

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:`torch.jit.save` is deprecated:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def mlp(digits):
    x_train, _, y_train, _ = digits
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = torch.from_numpy(x_train), torch.from_numpy(y_train).long()
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def _check(v, registry, mlp, x_test):
    import onnxruntime as ort

    assert v.parity["passed"] and v.parity["max_abs_err"] < 1e-4
    assert v.signature.inputs[0].shape == (-1, 64) and v.signature.outputs[0].shape == (-1, 10)
    assert v.signature.batch_axis and v.config["max_batch_size"] == 64
    sess = ort.InferenceSession(str(registry.artifact_path(v)), providers=["CPUExecutionProvider"])
    got = sess.run(None, {v.signature.inputs[0].name: x_test})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, mlp(torch.from_numpy(x_test)).numpy(), atol=1e-4)


def test_live_module(registry, mlp, digits):
    v = formats.register(registry, mlp, name="mlp")
    assert v.source_format == "torch"
    _check(v, registry, mlp, digits[1])


def test_pt2_archive(registry, tmp_path, mlp, digits):
    ep = torch.export.export(mlp, (torch.randn(4, 64),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(ep, tmp_path / "mlp.pt2")
    v = formats.import_file(registry, tmp_path / "mlp.pt2", name="mlp")
    assert v.source_format == "torch"
    assert {a.role for a in v.artifacts} == {"model.onnx", "source.pt2"}
    _check(v, registry, mlp, digits[1])


def test_pt2_with_a_fixed_batch_gets_a_dynamic_one(registry, tmp_path, mlp, digits):
    torch.export.save(torch.export.export(mlp, (torch.randn(3, 64),)), tmp_path / "fixed.pt2")
    v = formats.import_file(registry, tmp_path / "fixed.pt2", name="mlp")
    assert any("re-exported with a dynamic batch" in n for n in v.parity["notes"])
    _check(v, registry, mlp, digits[1])


class _BatchMixer(torch.nn.Module):
    """Mixes rows across the batch, so its outputs depend on the batch it was saved with."""

    def forward(self, x):
        return x - x.mean(dim=0, keepdim=True)


def test_pt2_whose_outputs_depend_on_its_batch_keeps_it_fixed_with_a_note(registry, tmp_path):
    torch.export.save(torch.export.export(_BatchMixer(), (torch.randn(2, 5),)), tmp_path / "mix.pt2")
    v = formats.import_file(registry, tmp_path / "mix.pt2", name="mix")
    assert v.signature.inputs[0].shape == (2, 5) and not v.signature.batch_axis
    assert v.config["max_batch_size"] == 0
    assert any("batch is fixed at 2" in n for n in v.parity["notes"])


def test_torchscript_needs_and_uses_sample_input(registry, tmp_path, mlp, digits):
    path = tmp_path / "mlp.pt"
    torch.jit.script(mlp).save(str(path))
    with pytest.raises(InvalidArgument, match="sample_input"):
        formats.import_file(registry, path, name="ts")
    assert_empty(registry)
    v = formats.import_file(registry, path, name="ts", options=formats.ImportOptions(sample_input=digits[1][:5]))
    assert v.source_format == "torchscript"
    _check(v, registry, mlp, digits[1])


def test_pickled_module_is_refused_then_trusted(registry, tmp_path, mlp):
    path = tmp_path / "whole.pt"
    torch.save(mlp, path)
    with pytest.raises(InvalidArgument, match="--trust"):
        formats.import_file(registry, path, name="whole")
    assert_empty(registry)
    v = formats.import_file(registry, path, name="whole", options=formats.ImportOptions(trust=True))
    assert v.parity["passed"]


def test_pt2_with_pickled_weights_is_refused(registry, tmp_path, mlp):
    ep = torch.export.export(mlp, (torch.randn(4, 64),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    good, bad = tmp_path / "good.pt2", tmp_path / "bad.pt2"
    torch.export.save(ep, good)
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("weights_config.json"):
                cfg = json.loads(data)
                next(iter(cfg["config"].values()))["use_pickle"] = True
                data = json.dumps(cfg).encode()
            zout.writestr(info, data)
    with pytest.raises(InvalidArgument, match="stored as a pickle"):
        formats.import_file(registry, bad, name="bad")
    assert_empty(registry)


class Noisy(torch.nn.Module):
    def forward(self, x):
        return x + torch.rand_like(x)


def test_parity_mismatch_is_refused_unless_allowed(registry):
    sample = np.zeros((4, 8), np.float32)
    with pytest.raises(InvalidArgument, match="does not match the original") as err:
        formats.register(registry, Noisy(), name="noisy", options=formats.ImportOptions(sample_input=sample))
    assert "allow-mismatch" in err.value.message
    assert_empty(registry)
    v = formats.register(registry, Noisy(), name="noisy",
        options=formats.ImportOptions(sample_input=sample, allow_mismatch=True))
    assert v.parity["passed"] is False and v.parity["max_abs_err"] > 1e-3


def test_truncated_pt2_is_refused(registry, tmp_path, mlp):
    ep = torch.export.export(mlp, (torch.randn(4, 64),))
    torch.export.save(ep, tmp_path / "m.pt2")
    data = (tmp_path / "m.pt2").read_bytes()
    (tmp_path / "cut.pt2").write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidArgument):
        formats.import_file(registry, tmp_path / "cut.pt2", name="cut")
    assert_empty(registry)


def test_unknown_object_is_refused(registry):
    with pytest.raises(InvalidArgument, match="cannot import a builtins.dict"):
        formats.register(registry, {"a": 1}, name="x")
