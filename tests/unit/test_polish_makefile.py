"""`make install` shows its progress (no `pip -qq`) and still fails when pip fails (pipefail under the filter)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_install_recipe_is_visible_and_keeps_pips_status(tmp_path: Path) -> None:
    recipe = subprocess.run(
        ["make", "-n", "install", f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "-qq" not in recipe and "echo \"installing maas[" in recipe
    assert "Collecting|Installing|Successfully" in recipe
    makefile = (ROOT / "Makefile").read_text()
    assert "SHELL := /bin/bash" in makefile and ".SHELLFLAGS := -o pipefail -c" in makefile
