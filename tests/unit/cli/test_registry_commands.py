"""The CLI's registry verbs: human output, --json for scripts, one-line errors with non-zero exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from maas.cli import context
from maas.cli.main import app
from maas.registry import Registry

runner = CliRunner()


@pytest.fixture
def reg(home: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setattr(context, "state", context.CliState())
    import maas.cli.main as main

    monkeypatch.setattr(main, "state", context.state)
    r = Registry.open(home)
    r.publish("iris", {"model.onnx": b"one"}, description="first")
    r.publish("iris", {"model.onnx": b"two"}, description="second")
    return r


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_versions_list_json(reg: Registry) -> None:
    code, out, _ = invoke("versions", "list", "iris", "--json")
    assert code == 0
    data = json.loads(out)
    assert [(v["version"], v["state"]) for v in data] == [(1, "ready"), (2, "ready")]


def test_versions_show_json_is_the_whole_record(reg: Registry) -> None:
    code, out, _ = invoke("versions", "show", "iris:1", "--json")
    assert code == 0
    assert json.loads(out) == reg.get("iris:1").to_dict()


def test_alias_tag_archive_roundtrip(reg: Registry) -> None:
    assert invoke("alias", "set", "iris", "production", "1")[0] == 0
    assert json.loads(invoke("versions", "show", "iris", "--json")[1])["version"] == 1
    assert invoke("tag", "iris@production", "team=ml", "stage=a")[0] == 0
    assert reg.get("iris:1").tags == {"team": "ml", "stage": "a"}
    assert invoke("tag", "iris:1", "--rm", "stage")[0] == 0
    assert reg.get("iris:1").tags == {"team": "ml"}
    assert invoke("tag", "iris", "owner=me", "--model")[0] == 0
    assert reg.get_model("iris").tags == {"owner": "me"}
    code, _, err = invoke("versions", "archive", "iris:1")
    assert code != 0 and "production" in err
    assert invoke("alias", "rm", "iris", "production")[0] == 0
    assert invoke("versions", "archive", "iris:1")[0] == 0
    assert reg.get("iris:1").state == "archived"


def test_models_list_show_delete(reg: Registry) -> None:
    code, out, _ = invoke("models", "list", "--json")
    assert code == 0 and [m["name"] for m in json.loads(out)] == ["iris"]
    code, out, _ = invoke("models", "show", "iris")
    assert code == 0 and "first" in out
    assert invoke("models", "delete", "iris", "--yes")[0] == 0
    assert json.loads(invoke("models", "list", "--json")[1]) == []


@pytest.mark.parametrize(
    "args",
    [
        ("versions", "show", "../x"),
        ("versions", "show", "a/b"),
        ("versions", "show", ""),
        ("versions", "show", "x" * 300),
        ("versions", "show", "iris:zero"),
        ("versions", "show", "nope"),
        ("versions", "show", "iris:99"),
        ("alias", "set", "iris", "production", "99"),
        ("tag", "iris:1", "novalue"),
        ("models", "delete", "ghost", "--yes"),
        ("serve", "--set", "iris.instances=zero"),
    ],
)
def test_user_errors_are_one_line_without_traceback(reg: Registry, args: tuple[str, ...]) -> None:
    code, out, err = invoke(*args)
    assert code != 0
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "Traceback" not in out + err


def test_config_prints_effective_settings(reg: Registry, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAAS_HTTP_PORT", "9123")
    monkeypatch.setenv("MAAS_API_KEY", "secret")
    code, out, _ = invoke("config", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["home"] == str(home) and data["http_port"] == 9123 and data["api_key"] == "***"


def test_home_flag_overrides_env(reg: Registry, tmp_path: Path) -> None:
    other = tmp_path / "other"
    code, out, _ = invoke("--home", str(other), "models", "list", "--json")
    assert code == 0 and json.loads(out) == []


def test_gc_reports(reg: Registry) -> None:
    invoke("models", "delete", "iris", "--yes")
    code, out, _ = invoke("gc", "--grace", "0", "--json")
    assert code == 0 and json.loads(out)["removed_blobs"] == 2


def test_jobs_submit_list_show_cancel(reg: Registry) -> None:
    code, out, _ = invoke("jobs", "submit", "evaluate", "--params", '{"ref": "iris", "data": "sklearn:iris"}',
                          "--json")
    assert code == 0
    job = json.loads(out)
    assert job["state"] == "queued" and job["kind"] == "evaluate"
    code, out, _ = invoke("jobs", "list", "--json")
    assert [j["id"] for j in json.loads(out)] == [job["id"]]
    assert json.loads(invoke("jobs", "show", job["id"], "--json")[1])["state"] == "queued"
    assert json.loads(invoke("jobs", "cancel", job["id"], "--json")[1])["state"] == "cancelled"
    code, _, err = invoke("jobs", "cancel", job["id"])
    assert code != 0 and "already cancelled" in err
    code, _, err = invoke("jobs", "submit", "rm", "--params", "{}")
    assert code != 0 and "unknown job kind" in err
    code, _, err = invoke("jobs", "submit", "evaluate", "--params", "{not json")
    assert code != 0 and "not JSON" in err
