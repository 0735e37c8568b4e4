"""`maas traffic` and `maas rollout` on a real registry: JSON for scripts, one-line errors, nothing changed
by a refused command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from maas.cli import context
from maas.cli.main import app
from maas.cli.traffic_cmd import parse_duration
from maas.errors import InvalidArgument
from maas.registry import Registry
from maas.types import Signature, TensorSpec

runner = CliRunner()
SIG = Signature((TensorSpec("x", "FP32", (-1, 4)),), (TensorSpec("y", "FP32", (-1, 3)),))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(context, "state", context.CliState())
    import maas.cli.main as main

    monkeypatch.setattr(main, "state", context.state)
    home = tmp_path / "home"
    with Registry.open(home) as r:
        for sig in (SIG, SIG, SIG, Signature((TensorSpec("x", "FP32", (-1, 5)),), SIG.outputs)):
            r.publish("m", {"model.onnx": b"x"}, signature=sig)
        r.set_alias("m", "production", 1)
    return home


def invoke(home: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--home", str(home), *args])
    return result.exit_code, result.stdout, result.stderr


def test_set_show_clear(home: Path) -> None:
    code, out, _ = invoke(home, "traffic", "set", "m", "1=90", "2=10", "--shadow", "3@0.25",
                          "--sticky-header", "X-User-Id", "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["arms"] == [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]
    assert doc["shadow"] == {"version": 3, "fraction": 0.25} and doc["sticky_header"] == "x-user-id"
    code, out, _ = invoke(home, "traffic", "show", "m")
    assert code == 0 and "90%" in out and "x-user-id" in out
    assert invoke(home, "traffic", "clear", "m")[0] == 0
    assert json.loads(invoke(home, "traffic", "show", "m", "--json")[1])["default"] is True


@pytest.mark.parametrize(("args", "message"), [
    (("1=90", "2=20"), "sum to 100"),
    (("1=110", "2=-10"), "negative"),
    (("1=50", "7=50"), "m:7 does not exist"),
    (("1=50", "4=50"), "signature of m:4 differs"),
    (("1=100", "--shadow", "2@0"), "(0, 1]"),
    (("1=100", "--shadow", "2@1.5"), "(0, 1]"),
    (("1:100",), "VERSION=WEIGHT"),
])
def test_bad_splits_are_one_line_errors(home: Path, args: tuple[str, ...], message: str) -> None:
    invoke(home, "traffic", "set", "m", "1=80", "2=20")
    code, _, err = invoke(home, "traffic", "set", "m", *args)
    assert code == 2 and err.startswith("error: ") and message in err and "Traceback" not in err
    assert json.loads(invoke(home, "traffic", "show", "m", "--json")[1])["arms"][0]["weight"] == 80


def test_rollout_verbs(home: Path) -> None:
    code, out, err = invoke(home, "rollout", "start", "m", "--to", "2", "--steps", "10,50,100", "--interval", "1s",
                            "--min-agreement", "0.9", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["state"], doc["interval_s"], doc["thresholds"]["min_agreement"]) == ("running", 1.0, 0.9)
    code, _, err = invoke(home, "rollout", "start", "m", "--to", "2")
    assert code == 4 and "already has a running rollout" in err
    assert invoke(home, "rollout", "pause", "m")[0] == 0
    code, out, _ = invoke(home, "rollout", "status", "m")
    assert code == 0 and "paused" in out
    assert json.loads(invoke(home, "rollout", "resume", "m", "--json")[1])["state"] == "running"
    doc = json.loads(invoke(home, "rollout", "abort", "m", "--json")[1])
    assert doc["state"] == "aborted" and [d["kind"] for d in doc["decisions"]] == [
        "started", "paused", "resumed", "aborted"]
    code, _, err = invoke(home, "rollout", "promote", "m")
    assert code == 5 and "aborted" in err
    code, _, err = invoke(home, "rollout", "start", "m", "--to", "4")
    assert code == 2 and "signature" in err


def test_durations() -> None:
    assert parse_duration("30s") == 30 and parse_duration("500ms") == 0.5 and parse_duration("2m") == 120
    assert parse_duration("1.5") == 1.5
    with pytest.raises(InvalidArgument):
        parse_duration("soon")
