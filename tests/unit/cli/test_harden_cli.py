"""The CLI against hostile arguments: names with control characters, digits that are not ASCII, broken
archives — each a one-line `error: …` with a non-zero exit code, never a traceback, and nothing registered."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from maas.cli import context
from maas.cli.main import app
from maas.registry import Registry
from maas.testing import hostile_archives

runner = CliRunner()


@pytest.fixture
def reg(home: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setattr(context, "state", context.CliState())
    import maas.cli.main as main

    monkeypatch.setattr(main, "state", context.state)
    r = Registry.open(home)
    r.publish("iris", {"model.onnx": b"one"})
    return r


def assert_one_line_error(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code not in (0, 1), (args, result.output)  # 1 would be an internal error
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.stderr)
    assert "Traceback" not in result.output


@pytest.mark.parametrize("end", ["\n", "\r", "\t", "\x00", "\x0b", "\u2028", "\x85"])
def test_names_aliases_tags_and_refs_with_control_characters(reg: Registry, end: str) -> None:
    for args in (["models", "show", f"iris{end}"], ["versions", "show", f"iris:1{end}"],
                 ["versions", "show", f"iris@prod{end}"], ["alias", "set", "iris", f"prod{end}", "1"],
                 ["alias", "set", f"iris{end}", "prod", "1"], ["tag", "iris:1", f"k{end}=v"],
                 ["tag", "--model", "iris", f"k{end}=v"]):
        assert_one_line_error(args)
    assert reg.get("iris:1").tags == {} and reg.get_model("iris").aliases == {}


def test_digits_that_are_not_ascii(reg: Registry) -> None:
    for args in (["versions", "show", "iris:²"], ["alias", "set", "iris", "prod", "²"],
                 ["versions", "show", "iris:\u0663"]):
        assert_one_line_error(args)


@pytest.mark.parametrize("filename", sorted(hostile_archives.cases()))
def test_broken_archives_are_one_line_errors(reg: Registry, tmp_path: Path, filename: str) -> None:
    path = tmp_path / filename
    path.write_bytes(hostile_archives.cases()[filename][0])
    assert_one_line_error(["import", str(path), "--name", "broken"])
    assert_one_line_error(["import", str(path), "--name", "mlp\n"])
    assert [m.name for m in reg.list_models()] == ["iris"]
