"""Structured pruning: remove whole Conv2d channels from a version's `torch.export` source, so the tensors and
the work really shrink (unlike zeroed weights), optionally fine-tune, and export the smaller model to ONNX.

The pruned program is also saved as the child's own `source.pt2`, so a child can be pruned again.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from maas.errors import FailedPrecondition, Internal, InvalidArgument
from maas.optimize.channels import find_groups, remove_channels
from maas.optimize.data import Dataset
from maas.optimize.prune import check_sparsity
from maas.optimize.torch_export import export_onnx
from maas.types import Signature

SOURCE_ROLE = "source.pt2"
PARITY_ATOL = 1e-4


def source_path(registry: Any, version: Any) -> Path:
    """The version's `.pt2` source; FailedPrecondition naming what is needed when it has none."""
    roles = sorted(a.role for a in version.artifacts if a.role.startswith("source."))
    if SOURCE_ROLE in roles:
        return Path(registry.artifact_path(version, SOURCE_ROLE))
    if roles or version.source_format == "torchscript":
        raise FailedPrecondition(
            f"structured pruning needs a PyTorch source saved with torch.export (.pt2); {version.ref} has "
            f"{', '.join(roles) or 'a TorchScript source'} ({version.source_format}), whose graph it cannot "
            "rewrite: import the model from a .pt2 file or register the live nn.Module"
        )
    raise FailedPrecondition(
        f"structured pruning needs a PyTorch source: {version.ref} stores no source.pt2 (source format "
        f"{version.source_format or 'unknown'}); import the model from a torch.export .pt2 file or register the "
        "live torch.nn.Module (both store one), or use unstructured --prune"
    )


def _plain_module(ep: Any) -> Any:
    """A plain fx GraphModule of the program (the exported one refuses train()/eval(), which export needs)."""
    import torch

    gm = ep.module()
    for node in list(gm.graph.nodes):
        if node.op == "call_module" and node.target == "_guards_fn" and not node.users:
            gm.graph.erase_node(node)  # checks the input shape only, which pruning leaves alone
    return torch.fx.GraphModule(gm, gm.graph)


def _count(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def fine_tune(module: Any, data: Dataset, epochs: int, seed: int, batch: int = 32, lr: float = 1e-3) -> dict[str, Any]:
    """A few seeded epochs of Adam on cross-entropy, so the pruned model recovers what it lost."""
    import torch
    import torch.nn.functional as F

    if data.y is None:
        raise InvalidArgument(f"fine-tuning needs labelled data; {data.spec!r} has no labels")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y.astype(np.int64))
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    module.train()
    losses: list[float] = []
    try:
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=gen)
            for i in range(0, len(x), batch):
                idx = order[i : i + batch]
                loss = F.cross_entropy(module(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
    except (RuntimeError, IndexError) as exc:
        raise InvalidArgument(f"cannot fine-tune on {data.spec!r}: {str(exc).splitlines()[0][:200]}") from None
    finally:
        module.eval()
    return {"epochs": epochs, "samples": int(len(x)), "data": data.spec, "seed": seed,
            "final_loss": round(float(np.mean(losses[-10:])), 6) if losses else None}


def _check_export(module: Any, onnx_path: Path, sample: np.ndarray, signature: Signature) -> dict[str, Any]:
    """The ONNX file against the pruned torch module: same output shape as the parent's, outputs close."""
    import torch

    from maas.optimize.measure import session

    with torch.no_grad():
        want = module(torch.from_numpy(sample)).numpy()
    sess = session(onnx_path)
    got = sess.run(None, {sess.get_inputs()[0].name: sample})[0]
    expected = tuple(d for d in signature.outputs[0].shape[1:]) if signature.outputs else got.shape[1:]
    shape_ok = got.shape == want.shape and all(e < 0 or e == g for e, g in zip(expected, got.shape[1:], strict=False))
    diff = float(np.max(np.abs(got.astype(np.float64) - want))) if got.shape == want.shape else float("inf")
    if not shape_ok or diff > PARITY_ATOL:
        raise Internal(
            f"the pruned model's ONNX export does not match it (output {list(got.shape)} vs torch "
            f"{list(want.shape)}, max abs diff {diff:.3g}); nothing was published"
        )
    return {"max_abs_diff": diff, "samples": int(len(sample)), "output_shape": list(got.shape[1:])}


def _save_source(module: Any, sample: np.ndarray, path: Path) -> str | None:
    """The pruned program as a `.pt2` with a dynamic batch; a note instead when torch.export refuses."""
    import torch

    try:
        batch = torch.export.Dim("batch", min=1)
        example = torch.from_numpy(np.concatenate([sample[:1]] * 2))  # batch 2: not specialized away
        program = torch.export.export(module, (example,), dynamic_shapes=({0: batch},))
        torch.export.save(program, str(path))
    except Exception as exc:  # torch.export raises many types; the ONNX child is still good without it
        return f"the pruned source was not saved ({type(exc).__name__}); this child cannot be pruned again"
    return None


def prune_structured(
    source: Path, dst: Path, sparsity: float, *, signature: Signature, sample: np.ndarray, limit: int,
    train: Dataset | None = None, epochs: int = 0, seed: int = 0,
) -> dict[str, Any]:
    """Write the pruned ONNX model to `dst` (and its `.pt2` beside it as `source.pt2`); returns the details."""
    import torch

    from maas.formats.torch import load_pt2

    sparsity = check_sparsity(sparsity)
    named = dst.parent / "parent.pt2"  # torch.export.load warns about a path not ending in .pt2
    shutil.copyfile(source, named)
    module = _plain_module(load_pt2(named, False, limit))
    groups = find_groups(module)
    before = _count(module)
    channels = remove_channels(module, groups, sparsity)
    module.eval()
    try:
        with torch.no_grad():
            module(torch.from_numpy(sample[:2]))
    except Exception as exc:  # a graph the analysis accepted but torch rejects: refuse, never publish
        raise FailedPrecondition(
            f"the pruned model does not run ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); nothing "
            "was published"
        ) from None
    tuned = fine_tune(module, train, epochs, seed) if train is not None and epochs > 0 else None
    inputs, outputs = signature.inputs[0].name, signature.outputs[0].name
    export_onnx(module, torch.from_numpy(sample[:1]), dst, inputs, outputs)
    details: dict[str, Any] = {
        "method": "structured: lowest-L1-norm Conv2d output channels removed",
        "target_sparsity": sparsity,
        "channels": channels,
        "parameters_before": before,
        "parameters_after": _count(module),
        "parameter_ratio": round(_count(module) / before, 4),
        "fine_tune": tuned,
        "parity_vs_torch": _check_export(module, dst, sample, signature),
    }
    note = _save_source(module, sample, dst.parent / SOURCE_ROLE)
    if note:
        details["note"] = note
    return details
