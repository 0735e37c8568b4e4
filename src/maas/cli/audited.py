"""The CLI's changes to the registry go into the audit log too (actor `cli:<user>`, source `cli@<host>`), as
the server's do: one wrapper around each changing verb, applied once the commands are registered."""

from __future__ import annotations

import functools
import logging
import socket
from collections.abc import Callable
from typing import Any

import typer

from maas.cli import context

log = logging.getLogger(__name__)

# Verbs that change the registry; `keys create|revoke` write their own, richer entries.
CHANGING = frozenset({
    "tag", "gc", "demo", "import", "eval", "optimize", "train", "models delete", "versions archive",
    "alias set", "alias rm", "jobs cancel", "jobs submit",
})


def _record(verb: str, params: dict[str, Any], outcome: str) -> None:
    if getattr(context.state, "_registry", None) is None:
        return  # the command never opened the registry (refused its input first): nothing changed in it
    target = " ".join(f"{k}={v}" for k, v in params.items() if v not in (None, False, [], ()) and k != "json_")
    try:
        from maas.security import AuditLog

        settings = context.state.settings()
        AuditLog(context.state.registry().store).record(
            f"cli:{settings.user}", f"cli {verb}", target=target[:2000],
            source=f"cli@{socket.gethostname()}", outcome=outcome,
        )
    except Exception:  # the change is made (or refused) already; a failed audit write must not hide that
        log.warning("could not record `maas %s` in the audit log", verb, exc_info=True)


def audited(verb: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    if getattr(fn, "audited_verb", None) == verb:
        return fn  # wrapped already: a command module's Typer is registered again on each build of the CLI

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
        except typer.Exit as exc:
            _record(verb, kwargs, "ok" if not exc.exit_code else f"exit {exc.exit_code}")
            raise
        except BaseException:
            _record(verb, kwargs, "error")
            raise
        _record(verb, kwargs, "ok")
        return result

    wrapper.audited_verb = verb  # type: ignore[attr-defined]
    return wrapper


def install(app: typer.Typer) -> None:
    def wrap(commands: list[Any], prefix: str) -> None:
        for command in commands:
            verb = f"{prefix}{command.name or command.callback.__name__}"
            if verb in CHANGING and command.callback is not None:
                command.callback = audited(verb, command.callback)

    wrap(app.registered_commands, "")
    for group in app.registered_groups:
        if group.typer_instance is not None:
            wrap(group.typer_instance.registered_commands, f"{group.name} ")
