"""`maas encryption status|enable|rotate` and where `maas config` says the master key is."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from maas.cli import context
from maas.cli.main import app
from maas.registry import Registry

runner = CliRunner()


@pytest.fixture
def cli_state(monkeypatch: pytest.MonkeyPatch) -> None:
    import maas.cli.main as main

    monkeypatch.setattr(context, "state", context.CliState())
    monkeypatch.setattr(main, "state", context.state)


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_status_rotate_and_config(home: Path, cli_state: None) -> None:
    with Registry.open(home) as reg:
        reg.publish("m", {"model.onnx": b"weights"})
    code, out, _ = invoke("encryption", "status", "--json")
    st = json.loads(out)
    assert code == 0 and st["encrypted"] and st["sealed"] == 1 and st["plaintext"] == 0
    code, out, _ = invoke("encryption", "status")
    assert code == 0 and "encryption: on" in out and "1 encrypted, 0 plaintext" in out
    code, out, _ = invoke("encryption", "rotate", "--json")
    rotated = json.loads(out)
    assert code == 0 and rotated["rewrapped"] == 1 and rotated["retired"] == [st["current_key"]]
    code, out, _ = invoke("config", "--json")
    assert code == 0 and json.loads(out)["master_key_file"] == str(home / "keys" / "master.key")


def test_enable_on_an_old_home(home: Path, cli_state: None) -> None:
    home.mkdir(parents=True)
    (home / "encryption.json").write_text('{"encrypted": false}')
    with Registry.open(home) as reg:
        reg.publish("m", {"model.onnx": b"weights"})
    code, out, _ = invoke("encryption", "status")
    assert code == 0 and "encryption: off" in out and "maas encryption enable" in out
    code, out, _ = invoke("encryption", "enable")
    assert code == 0 and "1 blob(s) encrypted now" in out


def test_an_environment_key_is_refused_by_rotate_in_one_line(
    home: Path, cli_state: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAAS_MASTER_KEY", base64.b64encode(bytes(32)).decode())
    code, out, err = invoke("encryption", "rotate")
    assert code == 5 and err.startswith("error: ") and "MAAS_MASTER_KEY" in err and len(err.splitlines()) == 1
    code, out, _ = invoke("config", "--json")
    assert json.loads(out)["master_key"] == "***"
