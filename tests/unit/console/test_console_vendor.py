"""The console's vendored scripts are exactly the npm releases the manifest names, with their licences, and
are shipped in the package (package-data), so nothing is fetched at run time."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from fnmatch import fnmatch
from importlib import resources
from pathlib import Path

VENDOR = resources.files("maas.console") / "static" / "vendor"
ROOT = Path(__file__).resolve().parents[3]


def manifest() -> list[dict[str, str]]:
    return json.loads((VENDOR / "manifest.json").read_text())  # type: ignore[no-any-return]


def test_every_vendored_file_matches_its_manifest_digest_and_has_its_licence() -> None:
    entries = manifest()
    assert {e["name"] for e in entries} == {"htmx.org", "chart.js", "cytoscape"}
    for e in entries:
        data = (VENDOR / e["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == e["sha256"], e["file"]
        assert re.fullmatch(r"\d+\.\d+\.\d+", e["version"]), e
        assert e["version"].encode() in data, e["file"]  # the release names itself
        licence = (VENDOR / e["licence_file"]).read_text()
        assert ("MIT" in licence or "Zero-Clause BSD" in licence) and len(licence) > 200
    listed = {e["file"] for e in entries} | {e["licence_file"] for e in entries} | {"manifest.json"}
    assert {p.name for p in VENDOR.iterdir()} == listed  # nothing unlisted ships


def test_pages_load_only_local_scripts() -> None:
    templates = resources.files("maas.console") / "templates"
    for page in templates.iterdir():
        text = page.read_text()
        for url in re.findall(r'(?:src|href)="([^"]+)"', text):
            assert not re.match(r"(?:https?:)?//", url), (page.name, url)


def test_static_files_and_templates_are_package_data() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["maas"]
    console = ROOT / "src" / "maas" / "console"
    shipped = [p for p in console.rglob("*") if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts]
    assert shipped
    for path in shipped:
        rel = path.relative_to(ROOT / "src" / "maas").as_posix()
        assert any(fnmatch(rel, pattern) for pattern in patterns), rel
