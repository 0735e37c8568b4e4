"""Integrated Gradients through Captum, for versions that keep their PyTorch source (`source.pt2`).

The gradient is taken through the version's array pre-processing (scale, normalize, layout) written as torch
operations, so the attributions are in the same space as the other methods (the pixels a person sees).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from maas import processing
from maas.errors import FailedPrecondition
from maas.explain.subject import IMAGE_OPS, Space, Subject

SOURCE_ROLE = "source.pt2"
_SOURCE_LIMIT = 8 * 1024**3  # uncompressed bytes a stored .pt2 may expand to


def has_source(subject: Subject) -> bool:
    return any(a.role == SOURCE_ROLE for a in subject.version.artifacts)


def _module(subject: Subject) -> Any:
    cached = getattr(subject, "_torch_module", None)
    if cached is not None:
        return cached
    import shutil
    from pathlib import Path

    from maas.formats.torch import load_pt2

    blob = Path(subject.registry.artifact_path(subject.version, SOURCE_ROLE))
    with subject.registry.work_dir("maas-explain-") as tmp:
        named = tmp / SOURCE_ROLE  # torch.export.load warns about a path not ending in .pt2
        shutil.copyfile(blob, named)
        module = load_pt2(named, trust=False, limit=_SOURCE_LIMIT).module()
    subject._torch_module = module  # type: ignore[attr-defined]
    return module


def _torch_steps(subject: Subject, space: Space) -> list[Any]:
    config = subject.version.config or {}
    steps = processing.parse_pre(config.get("preprocess"))
    if space.image:
        return [s for s in steps if s.op not in IMAGE_OPS]
    return [] if subject.decodes else list(steps)


def integrated_gradients(
    subject: Subject, space: Space, targets: list[int], baseline: float, steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """(attributions shaped like the space's single input, scores of the baseline [rows, outputs])."""
    import torch
    from captum.attr import IntegratedGradients

    if len(space.arrays) != 1:
        raise FailedPrecondition("integrated_gradients supports single-input models")
    module = _module(subject)
    pre = _torch_steps(subject, space)
    spec = subject.model_inputs[0]
    softmax = subject.postprocess is not None and any(
        isinstance(s, processing.Softmax) for s in subject.postprocess.steps
    )

    def forward(x: Any) -> Any:
        for step in pre:
            x = _apply(torch, step, x)
        want = tuple(spec.shape[1:])
        if tuple(x.shape[1:]) != want and all(d > 0 for d in want):
            x = x.reshape((x.shape[0], *want))
        out = module(x.float())
        out = out[0] if isinstance(out, list | tuple) else out
        out = out.reshape(out.shape[0], -1)
        return torch.softmax(out, dim=-1) if softmax else out

    (name, array), = space.arrays.items()
    inputs = torch.tensor(array, dtype=torch.float32, requires_grad=True)
    base = torch.full_like(inputs, float(baseline))
    attributions = IntegratedGradients(forward).attribute(
        inputs, baselines=base, target=targets, n_steps=steps, internal_batch_size=max(steps, 1)
    )
    with torch.no_grad():
        base_scores = forward(base).numpy()
    return attributions.detach().numpy().astype(np.float64), base_scores.astype(np.float64)


def _apply(torch: Any, step: Any, x: Any) -> Any:
    if isinstance(step, processing.Scale):
        return x * float(step.factor)
    if isinstance(step, processing.Normalize):
        mean = torch.tensor(step.mean, dtype=x.dtype)
        std = torch.tensor(step.std, dtype=x.dtype)
        if x.ndim == 4 and x.shape[1] == len(step.mean) and x.shape[-1] != len(step.mean):  # NCHW
            mean, std = mean.reshape(1, -1, 1, 1), std.reshape(1, -1, 1, 1)
        return (x - mean) / std
    if isinstance(step, processing.Layout):
        if step.to == "NCHW":
            return x.permute(0, 3, 1, 2)
        if step.to == "NHW":
            return x[..., 0]
        return x
    if isinstance(step, processing.Cast) and step.datatype in ("FP32", "FP16", "FP64"):
        return x
    raise FailedPrecondition(f"integrated_gradients cannot differentiate through the {step.op!r} step")
