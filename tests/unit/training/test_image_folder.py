"""Training on an image folder (one sub-folder per class of PNGs): the files are decoded to the configured
size and mode, and the registered version declares the same decode steps, so a posted PNG is classified as
in training."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maas.errors import InvalidArgument
from maas.training import train


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Digits 0 and 1 from load_digits as grey PNGs; every third one at 16x16, so decoding must resize."""
    from sklearn.datasets import load_digits

    d = load_digits()
    root = tmp_path / "images"
    for label in (0, 1):
        (root / f"digit{label}").mkdir(parents=True)
        for i, img in enumerate(d.images[d.target == label][:40]):
            pixels = np.clip(img * 16, 0, 255).astype(np.uint8)
            if i % 3 == 0:
                pixels = np.kron(pixels, np.ones((2, 2), np.uint8))
            (root / f"digit{label}" / f"{i}.png").write_bytes(_png(pixels))
    return root


def _config(folder: Path, family: str = "torch_cnn", **image: Any) -> dict[str, Any]:
    return {
        "name": "folder-cnn", "seed": 0, "data": {"source": str(folder)},
        "preprocessing": {"image": {"decode": {"mode": "L", "size": [8, 8]}, "scale": 1 / 255, **image}},
        "model": {"family": family, "epochs": 4, "batch_size": 16, "optimizer": {"lr": 0.01},
                  "layers": [{"type": "conv2d", "filters": 4, "kernel": 3, "activation": "relu"},
                             {"type": "flatten"}, {"type": "dense", "activation": "softmax"}]},
    }


@pytest.mark.parametrize("family", ["torch_cnn", "keras_cnn"])
def test_posted_png_is_classified_as_in_training(reg: Any, folder: Path, family: str) -> None:
    import onnxruntime as ort

    from maas.serving.steps import Preprocessor

    result = train(_config(folder, family), registry=reg)
    v = result.version
    assert v.config["labels"] == ["digit0", "digit1"]
    assert v.config["preprocess"] == [{"op": "decode_image", "mode": "L"}, {"op": "resize", "size": [8, 8]},
                                      {"op": "cast", "datatype": "FP32"}]
    assert v.signature is not None and v.signature.inputs[0].shape == (-1, 8, 8, 1)
    assert result.test_metrics["accuracy"] >= 0.9  # 0 vs 1 is easy

    # What the server does with PNG bytes: the version's pre-processing, then the model.
    files = sorted(folder.glob("digit*/*.png"))
    encoded = np.empty(len(files), dtype=object)
    encoded[:] = [f.read_bytes() for f in files]
    truth = np.array([int(f.parent.name[-1]) for f in files])
    pixels = Preprocessor(v.config["preprocess"], 1 << 20)(encoded)
    sess = ort.InferenceSession(reg.read_artifact(v), providers=["CPUExecutionProvider"])
    probs = sess.run(None, {v.signature.inputs[0].name: pixels})[0]
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert float(np.mean(probs.argmax(1) == truth)) >= 0.9


def test_image_folder_needs_decode_settings(reg: Any, folder: Path) -> None:
    cfg = _config(folder)
    del cfg["preprocessing"]["image"]["decode"]
    with pytest.raises(InvalidArgument, match=r"^preprocessing\.image\.decode: an image folder needs"):
        train(cfg, registry=reg)


def test_decode_on_numeric_data_names_the_field(reg: Any) -> None:
    cfg = _config(Path("unused"))
    cfg["data"]["source"] = "sklearn:digits"
    with pytest.raises(InvalidArgument, match=r"^preprocessing\.image\.decode: applies to image folders"):
        train(cfg, registry=reg)
