"""Distillation: a student with a quarter of the teacher's parameters or fewer, registered as its child."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maas.errors import InvalidArgument
from maas.optimize import optimize
from maas.optimize.distill import build_student, parse_spec, train_student
from maas.registry import ModelVersion, Registry

from .optimize_support import TEST_DATA, count_versions

STUDENT = {"type": "cnn", "channels": [8, 16], "dense": [], "epochs": 6, "train": "sklearn:digits:train"}


def test_small_student_keeps_95_percent_of_the_teacher(reg: Registry, teacher: ModelVersion) -> None:
    fractions: list[float] = []
    result = optimize(reg, "digits:1", distill=STUDENT, data=TEST_DATA, timing=False,
                      progress=lambda stage, fraction: fractions.append(fraction))
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) > STUDENT["epochs"]
    child, report = result.version, result.report
    assert child.lineage.parent == teacher.version and child.lineage.transform == "distill"
    assert child.lineage.params["channels"] == [8, 16] and child.lineage.params["train"] == "sklearn:digits:train"
    assert child.signature == teacher.signature and child.config == teacher.config
    details = report["details"]
    assert details["parameter_ratio"] <= 0.25
    assert details["parity_vs_torch"] <= 1e-4
    assert report["child"]["accuracy"] >= 0.95 * report["parent"]["accuracy"]


def test_spec_from_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "student.yaml"
    path.write_text("type: mlp\nhidden: [32]\nepochs: 2\n")
    assert parse_spec(path).hidden == [32]
    assert parse_spec(json.dumps({"type": "mlp", "hidden": [8]})).hidden == [8]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "cnn", "channels": [4, 4, 4, 4, 4, 4]}, "does not fit the input"),
        ({"type": "mlp", "channels": [4]}, "takes `hidden`"),
        ({"type": "cnn"}, "at least one entry"),
        ({"type": "transformer"}, "invalid student spec at type"),
        ({"type": "mlp", "hidden": [0]}, "invalid student spec at hidden.0"),
        ('{"type": ', "not valid JSON"),
    ],
)
def test_a_spec_that_does_not_fit_creates_no_version(
    reg: Registry, teacher: ModelVersion, spec: object, message: str
) -> None:
    before = count_versions(reg)
    with pytest.raises(InvalidArgument, match=message):
        optimize(reg, "digits:1", distill=spec, data="sklearn:digits:train", timing=False)  # type: ignore[arg-type]
    assert count_versions(reg) == before


def test_cnn_student_needs_an_image_input() -> None:
    with pytest.raises(InvalidArgument, match=r"needs an image input \[C, H, W\]; the teacher's input is \[64\]"):
        build_student(parse_spec({"type": "cnn", "channels": [4]}), (64,), 10)


def test_training_is_deterministic() -> None:
    rng = np.random.default_rng(0)
    x, t, y = rng.random((40, 64), dtype=np.float32), rng.random((40, 3), dtype=np.float32), rng.integers(0, 3, 40)
    spec = parse_spec({"type": "mlp", "hidden": [8], "epochs": 2, "batch_size": 16, "seed": 3})
    runs = []
    for _ in range(2):
        student = build_student(spec, (64,), 3)
        train_student(student, x, t, y, spec)
        runs.append([p.detach().numpy().copy() for p in student.parameters()])
    assert all(np.array_equal(a, b) for a, b in zip(*runs, strict=True))
