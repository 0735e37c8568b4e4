"""maas: self-hosted Model-as-a-Service — a versioned model registry, ONNX conversion, and a KServe v2 /
Triton-compatible inference server.

    import maas
    reg = maas.Registry.open()                      # in-process, $MAAS_HOME (default ~/.maas)
    v = maas.register(model, name="digits", sample_input=x)   # torch / keras / sklearn / onnx objects
    result = maas.train("examples/breast_cancer/train.yaml")  # search, refit, test, register
    client = maas.Client("http://127.0.0.1:8000")   # the same verbs over HTTP
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from maas.errors import MaasError

__version__ = "0.1.0"

if TYPE_CHECKING:
    from maas.client import AsyncClient, Client
    from maas.registry import ModelVersion, Registry
    from maas.training import Progress, TrainConfig, TrainResult
    from maas.types import ModelRef, Signature, TensorSpec


def __getattr__(name: str) -> Any:
    # Imported on first use so that `import maas` stays light (no HTTP client, no SQLAlchemy until needed, and no
    # numpy: `maas serve` sets how OpenBLAS's threads wait before numpy loads it, cli/main.py).
    if name in ("ModelRef", "Signature", "TensorSpec"):
        from maas import types

        return getattr(types, name)
    if name == "Registry":
        from maas.registry import Registry

        return Registry
    if name in ("Client", "AsyncClient"):
        from maas import client

        return getattr(client, name)
    raise AttributeError(f"module 'maas' has no attribute {name!r}")


def register(obj: Any, tokenizer: Any = None, *, name: str, registry: Registry | None = None,
             **options: Any) -> ModelVersion:
    """Convert a live model (torch, Keras, scikit-learn, ONNX) to verified ONNX and register it; a transformers
    language model is registered with its tokenizer, as safetensors: `register(model, tokenizer, name=…)`."""
    from maas import formats
    from maas.formats.options import ImportOptions
    from maas.registry import Registry

    reg = registry or Registry.open()
    return formats.register(reg, obj, name=name, options=ImportOptions(**options), tokenizer=tokenizer)


def import_file(path: str | os.PathLike[str], *, name: str, registry: Registry | None = None,
                **options: Any) -> ModelVersion:
    """Import a model file (ONNX, Keras, TorchScript, .pt2, skops…) as the model's next version."""
    from maas import formats
    from maas.formats.options import ImportOptions
    from maas.registry import Registry

    reg = registry or Registry.open()
    return formats.import_file(reg, path, name=name, options=ImportOptions(**options))


def train(config: TrainConfig | dict[str, Any] | str | os.PathLike[str], *, registry: Registry | None = None,
          name: str | None = None, progress: Progress | None = None) -> TrainResult:
    """Train, test and register one model as a `train.yaml` (path or dict) says; see `maas.training`."""
    from maas.training import train as run

    return run(config, registry=registry, name=name, progress=progress)


__all__ = [
    "AsyncClient", "Client", "MaasError", "ModelRef", "Registry", "Signature", "TensorSpec", "__version__",
    "import_file", "register", "train",
]
