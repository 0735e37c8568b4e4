"""Heat maps a person can look at: an image's attributions in colour over the picture itself, as PNG."""

from __future__ import annotations

import io

import numpy as np

MIN_SIDE = 224  # small inputs (8x8 digits) are scaled up, with hard pixel edges, so they can be seen


def heat(attributions: np.ndarray) -> np.ndarray:
    """Per-pixel magnitude [H, W] (summed over channels), scaled to [0, 1]."""
    a = np.abs(attributions.reshape(attributions.shape[0], attributions.shape[1], -1)).sum(axis=2)
    top = float(a.max())
    return a / top if top > 0 else a


def overlay_png(image: np.ndarray, attributions: np.ndarray, alpha: float = 0.8) -> bytes:
    """The picture (H, W, C pixels in 0-255) in grey with the heat map blended over it: the hotter a pixel,
    the more of its colour shows, so cold regions still show the picture."""
    from matplotlib import colormaps
    from PIL import Image

    pixels = np.asarray(image, dtype=np.float64).reshape(image.shape[0], image.shape[1], -1)
    grey = pixels.mean(axis=2) if pixels.shape[2] in (1, 3, 4) else pixels[..., 0]
    lo, hi = float(grey.min()), float(grey.max())
    grey = (grey - lo) / (hi - lo) if hi > lo else np.zeros_like(grey)
    h = heat(attributions)
    colours = colormaps["inferno"](h)[..., :3]
    weight = (alpha * h)[..., np.newaxis]
    blended = (1 - weight) * grey[..., np.newaxis] + weight * colours
    picture = Image.fromarray(np.clip(blended * 255, 0, 255).astype(np.uint8), "RGB")
    scale = max(1, -(-MIN_SIDE // max(1, min(picture.size))))
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    picture.save(buf, format="PNG")
    return buf.getvalue()
