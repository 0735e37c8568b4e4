"""Knowledge distillation: train a small PyTorch student on a registered teacher's softened outputs.

The teacher runs through onnxruntime (any registered ONNX model can teach); the student is described
declaratively, built to fit the teacher's input shape and class count, trained deterministically (fixed seed),
exported to ONNX and checked against itself in PyTorch before it is registered.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from maas import json_limits
from maas.errors import Internal, InvalidArgument
from maas.optimize.data import Dataset, predict
from maas.types import Signature

PARITY_TOLERANCE = 1e-4
Width = Annotated[int, Field(gt=0, le=65536)]


class StudentSpec(BaseModel):
    """`{"type": "mlp", "hidden": [64]}` or `{"type": "cnn", "channels": [8, 16], "dense": [32]}` + training."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["mlp", "cnn"]
    hidden: list[Width] = Field(default_factory=list, max_length=16)  # mlp
    channels: list[Width] = Field(default_factory=list, max_length=16)  # cnn: 3x3 conv + ReLU + 2x2 max-pool each
    dense: list[Width] = Field(default_factory=list, max_length=16)  # cnn: hidden layers after flattening
    temperature: float = Field(4.0, gt=0, le=100)
    alpha: float = Field(0.7, ge=0, le=1)  # weight of the teacher's soft targets; 1 - alpha on true labels
    epochs: int = Field(30, ge=1, le=10_000)
    lr: float = Field(3e-3, gt=0, le=10)
    batch_size: int = Field(64, ge=1, le=65536)
    seed: int = 0
    train: str | None = None  # data spec to train on; default: the `data` of the optimize call


def parse_spec(spec: StudentSpec | dict[str, Any] | str | Path) -> StudentSpec:
    """A spec from a dict, a JSON string, or a JSON/YAML file."""
    if isinstance(spec, StudentSpec):
        return spec
    if isinstance(spec, str | Path) and not str(spec).lstrip().startswith("{"):
        path = Path(spec)
        if not path.is_file():
            raise InvalidArgument(f"student spec {str(spec)[:80]!r} is neither JSON nor a readable file")
        import yaml

        try:
            spec = yaml.safe_load(path.read_text())  # YAML is a superset of JSON
        except yaml.YAMLError as exc:
            raise InvalidArgument(f"student spec file {path}: {exc}") from None
    elif isinstance(spec, str):
        spec = json_limits.loads(spec, "student spec")
    if not isinstance(spec, dict):
        raise InvalidArgument("student spec must be a mapping such as {\"type\": \"mlp\", \"hidden\": [64]}")
    try:
        return StudentSpec.model_validate(spec)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "spec"
        raise InvalidArgument(f"invalid student spec at {where}: {first['msg']}") from None


def build_student(spec: StudentSpec, input_shape: tuple[int, ...], classes: int) -> Any:
    """The student network for inputs of `input_shape` (no batch axis); InvalidArgument when it cannot fit."""
    import torch
    import torch.nn as nn

    torch.manual_seed(spec.seed)  # initial weights are part of what the seed fixes
    if any(d <= 0 for d in input_shape):
        raise InvalidArgument(f"a student needs a fixed input shape; the teacher's is {list(input_shape)}")
    layers: list[nn.Module] = []
    if spec.type == "mlp":
        if spec.channels or spec.dense:
            raise InvalidArgument("an mlp student takes `hidden`, not `channels`/`dense`")
        width = int(np.prod(input_shape))
        layers.append(nn.Flatten())
        hidden = spec.hidden
    else:
        if spec.hidden:
            raise InvalidArgument("a cnn student takes `channels` and `dense`, not `hidden`")
        if not spec.channels:
            raise InvalidArgument("a cnn student needs at least one entry in `channels`")
        if len(input_shape) != 3:
            raise InvalidArgument(
                f"a cnn student needs an image input [C, H, W]; the teacher's input is {list(input_shape)}"
            )
        depth, height, width_px = input_shape
        for out in spec.channels:
            if height < 2 or width_px < 2:
                raise InvalidArgument(
                    f"cnn student with channels {spec.channels} does not fit the input {list(input_shape)}: "
                    f"the feature map shrinks to {height}x{width_px} before the last 2x2 pooling"
                )
            layers += [nn.Conv2d(depth, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            depth, height, width_px = out, height // 2, width_px // 2
        layers.append(nn.Flatten())
        width, hidden = depth * height * width_px, spec.dense
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def count_parameters(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def _as_logits(scores: np.ndarray) -> np.ndarray:
    """Teachers may output probabilities (a softmax at the end); distillation wants logits."""
    scores = scores.astype(np.float32)
    if scores.min() >= 0 and np.allclose(scores.sum(axis=1), 1.0, atol=1e-3):
        return np.log(np.clip(scores, 1e-7, 1.0))
    return scores


def train_student(student: Any, x: np.ndarray, teacher_logits: np.ndarray, y: np.ndarray, spec: StudentSpec,
                  progress: Any = None) -> list[float]:
    """Minimise alpha*T^2*KL(student_T || teacher_T) + (1-alpha)*CE(student, y); returns the loss per epoch."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(spec.seed)
    gen = torch.Generator().manual_seed(spec.seed)
    xs, ts, ys = torch.from_numpy(x), torch.from_numpy(teacher_logits), torch.from_numpy(y.astype(np.int64))
    opt = torch.optim.Adam(student.parameters(), lr=spec.lr)
    t = spec.temperature
    losses: list[float] = []
    student.train()
    for epoch in range(spec.epochs):
        order, total = torch.randperm(len(xs), generator=gen), 0.0
        for i in range(0, len(xs), spec.batch_size):
            idx = order[i : i + spec.batch_size]
            out = student(xs[idx])
            soft = F.kl_div(F.log_softmax(out / t, dim=1), F.log_softmax(ts[idx] / t, dim=1),
                            reduction="batchmean", log_target=True) * (t * t)
            loss = spec.alpha * soft + (1 - spec.alpha) * F.cross_entropy(out, ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / len(xs))
        if progress:
            progress("distill: training", (epoch + 1) / spec.epochs)
    student.eval()
    return losses


def distill(teacher: str | Path, signature: Signature, spec: StudentSpec, train: Dataset, dst: str | Path,
            progress: Any = None) -> dict[str, Any]:
    """Train the student described by `spec` from `teacher` on `train` and write it to `dst` as ONNX."""
    import onnx
    import torch

    from maas.optimize.measure import session
    from maas.optimize.torch_export import export_onnx

    if train.y is None:
        raise InvalidArgument(f"distillation needs labelled data; {train.spec!r} has no labels")
    teacher_logits = _as_logits(predict(session(teacher), train.x))
    if teacher_logits.ndim != 2:
        raise InvalidArgument(f"distillation needs a classifier teacher [N, classes]; got {teacher_logits.shape}")
    classes = teacher_logits.shape[1]
    student = build_student(spec, tuple(signature.inputs[0].shape[1:]), classes)
    teacher_params = int(sum(int(np.prod(i.dims)) for i in onnx.load(str(teacher)).graph.initializer
                             if i.data_type in (1, 10, 11)))
    losses = train_student(student, train.x.astype(np.float32), teacher_logits, train.y, spec, progress)
    in_name, out_name = signature.inputs[0].name, signature.outputs[0].name if signature.outputs else "output"
    probe = torch.from_numpy(train.x[:64].astype(np.float32))
    with tempfile.TemporaryDirectory(prefix="maas-distill-") as tmp:
        path = export_onnx(student, probe[:1], Path(tmp) / "student.onnx", in_name, out_name)
        onnx.checker.check_model(str(path))
        with torch.no_grad():
            expected = student(probe).numpy()
        got = session(path).run(None, {in_name: probe.numpy()})[0]
        diff = float(np.max(np.abs(expected - got)))
        if diff > PARITY_TOLERANCE:
            raise Internal(f"exported student differs from PyTorch by {diff:.3g}; no version was created")
        Path(dst).write_bytes(path.read_bytes())
    params = count_parameters(student)
    return {
        "student": spec.model_dump(exclude={"train"}), "train_data": train.spec, "train_samples": int(len(train.x)),
        "student_parameters": params, "teacher_parameters": teacher_params,
        "parameter_ratio": round(params / teacher_params, 4) if teacher_params else None,
        "final_loss": round(losses[-1], 5), "parity_vs_torch": diff,
    }
