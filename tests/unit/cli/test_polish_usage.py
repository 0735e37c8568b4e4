"""Usage errors are one `error:` line (or `{"error": …}` with --json) with the table's exit code; the table is
in `maas --help` and the README."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from maas.cli import context
from maas.cli.main import app
from maas.registry import Registry

runner = CliRunner()
README = Path(__file__).resolve().parents[3] / "README.md"


@pytest.fixture
def reg(home: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setattr(context, "state", context.CliState())
    import maas.cli.main as main

    monkeypatch.setattr(main, "state", context.state)
    r = Registry.open(home)
    r.publish("digits", {"model.onnx": b"one"})
    return r


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["import"], "Missing argument 'path' (see 'maas import --help')"),
        (["import", "m.onnx"], "Missing option '--name'"),
        (["models", "lis"], "No such command 'lis'"),
        (["gc", "--grace", "soon"], "Invalid value for '--grace'"),
        (["models", "list", "-1"], "-1 is read as an option; a negative number is not a valid value here"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(reg: Registry, args: list[str], words: str) -> None:
    code, out, err = invoke(*args)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and words in err and err.count("\n") == 1


def test_a_negative_version_is_refused_by_name(reg: Registry) -> None:
    code, _, err = invoke("alias", "set", "digits", "production", "-1")
    assert (code, err) == (2, "error: invalid version '-1': expected a positive integer\n")


def test_json_errors_are_json_on_stderr_with_the_same_codes(reg: Registry) -> None:
    code, out, err = invoke("versions", "show", "nope:1", "--json")
    assert (code, out, json.loads(err)) == (3, "", {"error": "model 'nope' not found"})
    code, _, err = invoke("alias", "set", "digits", "production", "-1", "--json")
    assert code == 2 and json.loads(err) == {"error": "invalid version '-1': expected a positive integer"}
    code, _, err = invoke("import", "--json")
    assert code == 2 and "Missing argument" in json.loads(err)["error"]


def test_version_flag_and_exit_codes_are_documented(reg: Registry) -> None:
    code, out, _ = invoke("--help")
    assert code == 0 and "Print the version and exit." in out
    flat = " ".join(out.split())
    assert f"Exit codes: {context.exit_codes_text()}." in flat
    assert context.exit_codes_text() in " ".join(README.read_text().split())
    code, out, _ = invoke("--version")
    assert code == 0 and out.startswith("maas ")


def test_a_declined_confirmation_is_an_abort(reg: Registry) -> None:
    result = runner.invoke(app, ["models", "delete", "digits"], input="n\n")
    assert result.exit_code == 1 and result.stderr.endswith("error: aborted\n")
