"""The import contract, checked at run time as well as by import-linter: importing each core package (the
`source_modules` of pyproject's first contract) loads no transport module."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
CORE = CONTRACTS[0]["source_modules"]
FORBIDDEN = CONTRACTS[0]["forbidden_modules"]


def test_the_core_packages_import_no_transport() -> None:
    code = (
        f"import sys, {', '.join(CORE)}\n"
        f"forbidden = {FORBIDDEN!r}\n"
        "bad = [m for m in sys.modules if any(m == f or m.startswith(f + '.') for f in forbidden)]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(ROOT / "src")})


def test_the_contract_names_the_serving_core() -> None:
    assert {"maas.serving", "maas.registry", "maas.formats"} <= set(CORE)
    assert {"fastapi", "grpc", "maas.server"} <= set(FORBIDDEN)
