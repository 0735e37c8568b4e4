"""Every class that implements `serving.runtime.Runtime` is named for it (`…Runtime`), not `…Backend` or
`…Session`: a reader looking for the runtimes finds them by name (issue #17)."""

from __future__ import annotations

import ast
from pathlib import Path

import maas
from maas.serving.runtime import OnnxRuntime, Runtime

from .serving_models import linear

SRC = Path(maas.__file__).parent


def _members(cls: ast.ClassDef) -> set[str]:
    return {n.name for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def _classes() -> list[tuple[Path, ast.ClassDef]]:
    found = []
    for path in SRC.rglob("*.py"):
        if "grpc_gen" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [(path, n) for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    return found


def test_classes_implementing_runtime_are_named_runtime() -> None:
    protocol = next(c for p, c in _classes() if c.name == "Runtime" and p.name == "runtime.py")
    needed = _members(protocol)
    assert needed >= {"inputs", "outputs", "run", "close"}
    implementers = [(p, c) for p, c in _classes() if c is not protocol and needed <= _members(c)]
    assert any(c.name == "OnnxRuntime" for _, c in implementers)
    wrong = [f"{p.relative_to(SRC)}:{c.name}" for p, c in implementers if not c.name.endswith("Runtime")]
    assert wrong == []


def test_onnxruntime_satisfies_the_protocol() -> None:
    runtime: Runtime = OnnxRuntime(linear())
    try:
        assert [s.name for s in runtime.inputs] and [s.name for s in runtime.outputs]
    finally:
        runtime.close()
