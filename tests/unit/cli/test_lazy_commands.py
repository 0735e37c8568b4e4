"""The root command group loads the other command modules on first use (`maas serve` imports none of them);
`maas --help` and the audit log see the same commands as when every module was registered up front."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from maas.cli import context
from maas.cli.main import COMMAND_MODULES, LazyCommandsGroup, app
from maas.registry import Registry

runner = CliRunner()
JOB = "0123456789abcdef0123456789abcdef"  # well formed, unknown


def test_the_listing_matches_registering_every_module_up_front() -> None:
    eager = typer.Typer()
    for command in app.registered_commands:
        eager.registered_commands.append(command)
    eager.registered_groups.extend(app.registered_groups)
    for module in dict.fromkeys(COMMAND_MODULES.values()):
        importlib.import_module(f"maas.cli.{module}").register(eager)
    expected = typer.main.get_group(eager).list_commands(None)  # type: ignore[arg-type]
    lazy = typer.main.get_command(app)
    assert isinstance(lazy, LazyCommandsGroup)
    assert lazy.list_commands(None) == expected  # type: ignore[arg-type]
    assert set(COMMAND_MODULES) == set(expected) - set(typer.main.get_group(app).commands)  # not loaded yet


@pytest.mark.parametrize("name", sorted(COMMAND_MODULES))
def test_each_command_loads_from_its_module(name: str) -> None:
    group = typer.main.get_command(app)
    command = group.get_command(None, name)  # type: ignore[attr-defined]
    assert command is not None and command.name == name


def test_serve_imports_no_other_command_module() -> None:
    code = ("import sys; from maas.cli.main import app; import typer; typer.main.get_command(app)"
            ".get_command(None, 'serve'); print([m for m in sys.modules if m.endswith('_cmd') or m == 'rich.table'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.replace("'", '"')) == ["maas.cli.encryption_cmd"]


def test_a_lazily_loaded_changing_verb_is_audited_once(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "state", context.CliState())
    import maas.cli.jobs_cmd as jobs_cmd
    import maas.cli.keys_cmd as keys_cmd

    monkeypatch.setattr(jobs_cmd, "state", context.state)
    monkeypatch.setattr(keys_cmd, "state", context.state)
    Registry.open(home).close()
    for _ in range(2):  # each invoke builds the CLI again: the verb must still be wrapped once
        assert runner.invoke(app, ["jobs", "cancel", JOB]).exit_code == 3
    out = runner.invoke(app, ["audit", "--json"]).stdout
    assert [(e["action"], e["outcome"]) for e in json.loads(out)] == [("cli jobs cancel", "exit 3")] * 2
