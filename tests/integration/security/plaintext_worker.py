"""Run as `python -m tests.integration.security.plaintext_worker HOME OUT` with TMPDIR set: imports (a live
torch module, a .pt2 file, a scikit-learn estimator), optimizes (dynamic int8, slim), exports, and uploads
(direct and as a background job) into an encrypted home, recording every name created in TMPDIR meanwhile.
Writes {"pid", "created", "served", "pattern_in_export"} to OUT."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import onnxruntime.quantization  # noqa: F401  (its import-time files are not the model's)
import sklearn.linear_model
import torch

from maas import formats
from maas.config import Settings
from maas.formats.options import ImportOptions
from maas.optimize.service import optimize
from maas.registry import Registry
from maas.testing.live_server import live_server

from .temp_watch import CreatedNames

WEIGHTS = np.random.default_rng(7).standard_normal((16, 8)).astype(np.float32)
PATTERN = WEIGHTS.tobytes()[:48]


def network() -> torch.nn.Module:
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(WEIGHTS))
    return net.eval()


def upload(base: str, name: str, data: bytes, background: bool) -> dict[str, object]:
    answer = httpx.post(f"{base}/api/v1/models/{name}/versions", params={"background": str(background).lower()},
                        files={"file": ("model.onnx", data)}, headers={"X-Requested-With": "test"}, timeout=120)
    answer.raise_for_status()
    job = answer.json()
    while background and job["state"] not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.1)
        job = httpx.get(f"{base}/api/v1/jobs/{job['id']}", timeout=30).json()
    return dict(job)


def main(home: Path, out: Path) -> None:
    outside = home.parent / "outside"
    outside.mkdir()
    sample = torch.randn(2, 8)
    torch.export.save(torch.export.export(network(), (sample,)), str(outside / "net.pt2"))
    x = np.random.default_rng(0).standard_normal((40, 4)).astype(np.float32)
    estimator = sklearn.linear_model.LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    settings = Settings(home=home)
    served = []
    with CreatedNames(tempfile.gettempdir()) as seen:
        with Registry(settings) as reg:
            assert reg.encrypted
            formats.register(reg, network(), name="net", options=ImportOptions(sample_input=sample))
            formats.import_file(reg, outside / "net.pt2", name="net")
            formats.register(reg, estimator, name="lr", options=ImportOptions(sample_input=x[:2]))
            optimize(reg, "net", quantize="dynamic", timing=False)
            optimize(reg, "net:1", slim=True, timing=False)
            formats.export(reg, "net:1", "onnx", outside / "net.onnx")
            try:
                formats.import_file(reg, outside / "net.onnx", name="net",
                                    options=ImportOptions(sample_input=np.zeros((2, 9), "f4")))
            except Exception as exc:  # a refused import cleans up too
                served.append(f"refused: {type(exc).__name__}")
        model = (outside / "net.onnx").read_bytes()
        with live_server(settings) as srv:
            served.append(str(upload(srv.http_url, "up", model, background=False)["version"]))
            served.append(str(upload(srv.http_url, "up", model, background=True)["state"]))
    out.write_text(json.dumps({"pid": os.getpid(), "created": seen.names, "served": served,
                               "pattern_in_export": PATTERN in model}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
