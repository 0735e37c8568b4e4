"""int8 vs fp32 on a ResNet-18-shaped network (random weights) on this CPU: is quantization worth it here?

Run: python bench/optimize_resnet.py [--size 224] [--runs 20]
Builds bench/models.py's ResNet-18 (plain PyTorch; torchvision is not available), exports it, quantizes
it statically (QDQ, per-channel, calibrated on random images) and dynamically, and measures latency p50 at batch 1 and
throughput at batch 32 in one process. Random weights do not change the arithmetic cost, only accuracy.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from models import ResNet18  # bench/models.py: the same network the serving benchmark uses


def timed(path: Path, x1: np.ndarray, x32: np.ndarray, runs: int) -> tuple[float, float]:
    from maas.optimize.measure import session

    sess = session(path)
    name = sess.get_inputs()[0].name
    sess.run(None, {name: x1})
    lat = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, {name: x1})
        lat.append(time.perf_counter() - t0)
    sess.run(None, {name: x32})
    t0 = time.perf_counter()
    n = max(3, runs // 4)
    for _ in range(n):
        sess.run(None, {name: x32})
    return float(np.median(lat)) * 1e3, 32 * n / (time.perf_counter() - t0)


def main() -> None:
    import torch

    from maas.optimize.quantize import quantize
    from maas.optimize.torch_export import export_onnx

    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x1 = rng.random((1, 3, args.size, args.size), dtype=np.float32)
    x32 = rng.random((32, 3, args.size, args.size), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        example = torch.zeros(1, 3, args.size, args.size)
        fp32 = export_onnx(ResNet18().eval(), example, Path(tmp) / "fp32.onnx", "x", "y")
        variants = {"fp32": fp32}
        quantize(fp32, Path(tmp) / "static.onnx", "static", calibration=x32[:16])
        variants["int8 static QDQ"] = Path(tmp) / "static.onnx"
        quantize(fp32, Path(tmp) / "dynamic.onnx", "dynamic")
        variants["int8 dynamic"] = Path(tmp) / "dynamic.onnx"
        base = None
        print(f"ResNet-18 shape, {args.size}x{args.size}, random weights, onnxruntime CPU")
        print(f"{'variant':18} {'MB':>7} {'p50 b1 ms':>10} {'b32 img/s':>10} {'b1 speed-up':>12} {'b32 speed-up':>13}")
        for label, path in variants.items():
            lat, thr = timed(path, x1, x32, args.runs)
            base = base or (lat, thr)
            print(f"{label:18} {path.stat().st_size / 1e6:7.1f} {lat:10.2f} {thr:10.1f} "
                  f"{base[0] / lat:11.2f}x {thr / base[1]:12.2f}x")


if __name__ == "__main__":
    main()
