"""Occlusion for images: slide a window over the picture, fill it with a baseline value and record how much
the score drops; a pixel's attribution is the mean drop over the windows that covered it. Model-agnostic
(only the scoring function is called), one model evaluation per window position."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from maas.errors import InvalidArgument

# Windows scored per call: bounds the memory of one batch of occluded copies.
BATCH = 64


def window_positions(height: int, width: int, window: int, stride: int) -> list[tuple[int, int]]:
    """Top-left corners; the last window of each axis is pinned to the edge so every pixel is covered."""
    def starts(size: int) -> list[int]:
        if window >= size:
            return [0]
        out = list(range(0, size - window + 1, stride))
        if out[-1] != size - window:
            out.append(size - window)
        return out

    return [(y, x) for y in starts(height) for x in starts(width)]


def default_window(height: int, width: int) -> int:
    return max(1, min(height, width) // 7)


def occlude(
    scores: Callable[[np.ndarray], np.ndarray], image: np.ndarray, target: int, *, window: int, stride: int,
    baseline: float, max_evals: int,
) -> tuple[np.ndarray, float]:
    """(attributions shaped like `image` [H, W, C], score of the fully occluded image) for one picture."""
    height, width = image.shape[:2]
    positions = window_positions(height, width, window, stride)
    if len(positions) + 2 > max_evals:
        raise InvalidArgument(
            f"occlusion with window {window} and stride {stride} on a {height}x{width} image needs "
            f"{len(positions) + 2} evaluations, over max_evals {max_evals}: use a larger window or stride"
        )
    flat = image.reshape(1, -1)
    reference = scores(np.concatenate([flat, np.full_like(flat, baseline)]))
    original, base = float(reference[0, target]), float(reference[1, target])
    total = np.zeros((height, width), dtype=np.float64)
    count = np.zeros((height, width), dtype=np.float64)
    for begin in range(0, len(positions), BATCH):
        chunk = positions[begin:begin + BATCH]
        copies = np.repeat(image[np.newaxis], len(chunk), axis=0)
        for i, (y, x) in enumerate(chunk):
            copies[i, y:y + window, x:x + window] = baseline
        drops = original - scores(copies.reshape(len(chunk), -1))[:, target]
        for (y, x), drop in zip(chunk, drops, strict=True):
            total[y:y + window, x:x + window] += drop
            count[y:y + window, x:x + window] += 1
    per_pixel = total / np.maximum(count, 1)
    channels = image.shape[2] if image.ndim == 3 else 1
    attributions = np.repeat(per_pixel[..., np.newaxis], channels, axis=2) / channels
    return attributions.reshape(image.shape), base
