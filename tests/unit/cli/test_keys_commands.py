"""`maas keys create|list|revoke` and `maas audit`: the token printed once, JSON for scripts, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from maas.cli import context, keys_cmd
from maas.cli.main import app
from maas.registry import Registry
from maas.security import Authorizer, KeyStore, Scope

runner = CliRunner()


@pytest.fixture
def reg(home: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setattr(context, "state", context.CliState())
    monkeypatch.setattr(keys_cmd, "state", context.state)
    import maas.cli.main as main

    monkeypatch.setattr(main, "state", context.state)
    return Registry.open(home)


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_create_prints_the_token_once_and_it_works(reg: Registry) -> None:
    code, out, err = invoke("keys", "create", "--name", "ci", "--scope", "infer", "--models", "digits*",
                            "--expires", "30d", "--rate", "50/s")
    assert code == 0, err
    token = out.strip()
    assert token.startswith("maas_") and "shown only once" in err
    principal = Authorizer(KeyStore(reg.store)).check(token, Scope.INFER, "digits-cnn")
    assert principal.name == "ci" and principal.models == ("digits*",)
    code, out, _ = invoke("keys", "list", "--json")
    (listed,) = json.loads(out)
    assert token not in out and listed["rate"] == "50/s" and listed["state"] == "active"
    code, out, _ = invoke("keys", "list")
    assert code == 0 and listed["id"] in out and token not in out


def test_revoke_and_audit(reg: Registry) -> None:
    _, out, _ = invoke("keys", "create", "--name", "ops", "--scope", "admin", "--json")
    made = json.loads(out)
    assert made["token"].startswith("maas_") and made["scope"] == "admin"
    code, out, _ = invoke("keys", "revoke", made["id"])
    assert code == 0 and "revoked" in out
    code, _, err = invoke("keys", "revoke", made["id"])
    assert code == 5 and err.startswith("error: ") and "already revoked" in err
    code, out, _ = invoke("audit", "--json")
    entries = json.loads(out)
    assert [e["action"] for e in entries] == ["keys revoke", "keys create"]
    assert all(e["source"] == "cli" and e["actor"].startswith("cli:") for e in entries)
    assert made["token"] not in out


@pytest.mark.parametrize(("args", "message"), [
    (["--scope", "root"], "unknown scope"),
    (["--scope", "read", "--rate", "fast"], "invalid rate"),
    (["--scope", "read", "--expires", "soon"], "invalid expiry"),
    (["--scope", "read", "--models", "Bad/Name"], "invalid model pattern"),
])
def test_bad_input_is_one_line(reg: Registry, args: list[str], message: str) -> None:
    code, out, err = invoke("keys", "create", "--name", "x", *args)
    assert code == 2 and err.startswith("error: ") and message in err and "Traceback" not in err
    assert out == ""


def test_changing_verbs_are_audited(reg: Registry) -> None:
    reg.publish("iris", {"model.onnx": b"one"})
    assert invoke("alias", "set", "iris", "prod", "1")[0] == 0
    assert invoke("alias", "set", "nope", "prod", "1")[0] == 3
    assert invoke("models", "list")[0] == 0  # a read: not audited
    _, out, _ = invoke("audit", "--json")
    entries = [(e["action"], e["target"], e["outcome"]) for e in json.loads(out)]
    assert entries == [("cli alias set", "name=nope alias=prod version=1", "exit 3"),
                       ("cli alias set", "name=iris alias=prod version=1", "ok")]
