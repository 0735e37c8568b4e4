"""The test tree imports by package (pytest's importlib mode): every folder is a package and helpers are
imported relatively, so two test modules may share a basename without colliding at merge."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_pytest_uses_importlib_mode() -> None:
    config = tomllib.loads((TESTS.parent / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--import-mode=importlib" in config["addopts"]


def test_every_test_folder_is_a_package_and_helpers_are_imported_relatively() -> None:
    for folder in [TESTS, *(p for p in TESTS.rglob("*") if p.is_dir() and p.name != "__pycache__")]:
        assert (folder / "__init__.py").is_file(), folder
    local = {p.stem for p in TESTS.rglob("*.py")}
    for module in TESTS.rglob("*.py"):
        for line in module.read_text().splitlines():
            match = re.match(r"(?:from|import) ([A-Za-z_]\w*)\b", line)
            assert not (match and match.group(1) in local), f"{module}: {line} (import it relatively)"
