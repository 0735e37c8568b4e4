"""Export a PyTorch module to one self-contained ONNX file with a dynamic batch axis.

The legacy TorchScript exporter is used: it is fast on 2 cores and writes one file; the dynamo exporter in
torch 2.13 writes external data by default, which a single registry artifact cannot carry.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


def export_onnx(module: Any, example: Any, path: str | Path, input_name: str, output_name: str) -> Path:
    """Write `module` (in eval mode) to `path`, input/output named as the registered signature expects."""
    import torch

    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter announces its retirement
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(
            module, (example,), str(path), dynamo=False, input_names=[input_name], output_names=[output_name],
            dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}}, opset_version=17,
        )
    return Path(path)
