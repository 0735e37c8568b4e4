"""`maas keys create|list|revoke` and `maas audit`: API keys and the audit log in the registry database
(the same rows `maas serve` checks; the token is printed once, at creation)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from maas.cli.context import console, err_console, handle_errors, print_json, state

keys_app = typer.Typer(help="API keys: scopes infer < read < write < admin, model patterns, expiry, rates.",
                       no_args_is_help=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _stores():  # type: ignore[no-untyped-def]
    from maas.security import AuditLog, KeyStore

    store = state.registry().store
    return KeyStore(store), AuditLog(store)


def _actor() -> str:
    return f"cli:{state.settings().user}"


@keys_app.command("create")
@handle_errors
def create(
    name: Annotated[str, typer.Option("--name", help="A label for people reading `maas keys list`.")],
    scope: Annotated[str, typer.Option("--scope", help="infer, read, write or admin (each implies the ones before).")],
    models: Annotated[list[str] | None, typer.Option(
        "--models", help="Model name globs this key may use, e.g. 'digits*' (repeatable or comma-separated; "
                         "default all).")] = None,
    expires: Annotated[str | None, typer.Option("--expires", help="e.g. 30d, 12h, 2w, or an ISO date.")] = None,
    rate: Annotated[str | None, typer.Option("--rate", help="Requests allowed, e.g. 50/s, 600/m, 10000/h.")] = None,
    json_: JsonFlag = False,
) -> None:
    """Create a key and print its token (shown this once; only a hash is stored)."""
    keys, audit = _stores()
    patterns = [p for item in models or [] for p in item.split(",")]
    key, token = keys.create(name, scope, models=patterns, expires=expires, rate=rate, created_by=_actor())
    audit.record(_actor(), "keys create", target=key.id, source="cli", outcome="ok",
                 details={"name": key.name, "scope": key.scope.value, "models": list(key.models)})
    if json_:
        return print_json({**key.to_dict(), "token": token})
    console.print(token, markup=False, highlight=False)
    err_console.print(f"key {key.id} ({key.name}, scope {key.scope.value}): the token above is shown only once",
                      markup=False, highlight=False)


@keys_app.command("list")
@handle_errors
def list_keys(json_: JsonFlag = False) -> None:
    """List keys (never their tokens)."""
    keys, _ = _stores()
    items = keys.list()
    if json_:
        return print_json([k.to_dict() for k in items])
    table = Table("id", "name", "scope", "models", "rate", "state", "expires", "last used")
    table.columns[0].no_wrap = True  # the id is what `maas keys revoke` takes: never cut it
    table.columns[0].min_width = 12
    for k in items:
        d = k.to_dict()
        table.add_row(k.id, k.name, k.scope.value, ",".join(k.models), d["rate"] or "-", d["state"],
                      (d["expires_at"] or "-")[:16], (d["last_used_at"] or "-")[:16])
    console.print(table)


@keys_app.command("revoke")
@handle_errors
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id, from `maas keys list`.")],
           json_: JsonFlag = False) -> None:
    """Revoke a key: a running server refuses it within seconds."""
    keys, audit = _stores()
    key = keys.revoke(key_id)
    audit.record(_actor(), "keys revoke", target=key.id, source="cli", outcome="ok")
    if json_:
        return print_json(key.to_dict())
    console.print(f"revoked {key.id} ({key.name})", markup=False)


def audit(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many entries, newest first.")] = 50,
    actor: Annotated[str | None, typer.Option(help="Only this actor.")] = None,
    json_: JsonFlag = False,
) -> None:
    """Show the audit log of control-plane changes: who, what, when, from where."""
    _, log = _stores()
    entries = log.list(limit, actor)
    if json_:
        return print_json([e.to_dict() for e in entries])
    table = Table("when", "actor", "action", "target", "from", "outcome")
    for e in entries:
        table.add_row(e.at.strftime("%Y-%m-%d %H:%M:%S"), e.actor, e.action, e.target, e.source, e.outcome)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
    app.command("audit")(handle_errors(audit))
