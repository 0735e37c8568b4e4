"""Image-folder data sets for training: the PNG/JPEG files are decoded by the very steps the registered
version declares (`decode_image`, `resize`, `cast`), run by the server's own pre-processor, so a file a client
posts is turned into the same pixels the net was trained on."""

from __future__ import annotations

from typing import Any

import numpy as np

from maas.errors import InvalidArgument
from maas.training.config import TrainConfig

MAX_PIXELS = 64 * 1024 * 1024  # per source image; larger files are refused as in maas.evaluate


def version_steps(cfg: TrainConfig) -> list[dict[str, Any]] | None:
    """The version's `preprocess` list, or None when the data set is not an image folder."""
    image = cfg.preprocessing.image
    if image is None or image.decode is None:
        return None
    d = image.decode
    return [{"op": "decode_image", "mode": d.mode}, {"op": "resize", "size": list(d.size)},
            {"op": "cast", "datatype": "FP32"}]


def decode(cfg: TrainConfig, encoded: np.ndarray) -> np.ndarray:
    """Encoded files -> float32 NHWC pixels (0..255), through the server's pre-processor."""
    from maas.serving.steps import Preprocessor

    steps = version_steps(cfg)
    if steps is None:
        raise InvalidArgument(
            "preprocessing.image.decode: an image folder needs {mode: L|RGB, size: [height, width]} to decode "
            "its files (and a cnn family)"
        )
    pre = Preprocessor(steps, MAX_PIXELS)
    try:
        return np.asarray(pre(encoded), dtype=np.float32)
    except InvalidArgument as exc:
        raise InvalidArgument(f"data.source: {exc.message}") from None
