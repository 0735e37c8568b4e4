"""`maas encryption status|enable|rotate`: encryption at rest of this home's artifacts. Logic lives in the core."""

from __future__ import annotations

from typing import Annotated

import typer

from maas.cli import context
from maas.cli.context import handle_errors, print_json

encryption_app = typer.Typer(help="Encryption at rest of the artifact store (AES-256-GCM envelope).",
                             no_args_is_help=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@encryption_app.command("status")
@handle_errors
def status(json_: JsonFlag = False) -> None:
    """Whether artifacts are encrypted, which master key seals them, and how many blobs are still plaintext."""
    st = context.state.registry().encryption_status()
    if json_:
        return print_json(st.to_dict())
    context.console.print(f"encryption: {'on' if st.encrypted else 'off'}")
    context.console.print(f"master key: {st.key_source}" + (f" (current {st.current_key})" if st.current_key else ""))
    context.console.print(f"blobs: {st.blobs} ({st.sealed} encrypted, {st.plaintext} plaintext)")
    for kid, n in sorted(st.by_key.items()):
        context.console.print(f"  key {kid}: {n}")
    if st.rotation_in_progress:
        context.console.print("a key rotation is unfinished: run `maas encryption rotate` to complete it")
    if not st.encrypted:
        context.console.print("run `maas encryption enable` to encrypt this home")


@encryption_app.command("enable")
@handle_errors
def enable(json_: JsonFlag = False) -> None:
    """Encrypt every existing blob and all new ones (safe to interrupt: run it again to resume)."""
    sealed = context.state.registry().enable_encryption()
    st = context.state.registry().encryption_status()
    if json_:
        return print_json({"sealed": sealed, **st.to_dict()})
    context.console.print(f"encryption on: {sealed} blob(s) encrypted now, {st.sealed} of {st.blobs} encrypted in all")


@encryption_app.command("rotate")
@handle_errors
def rotate(json_: JsonFlag = False) -> None:
    """New master key; re-wrap every data key under it (the data is not re-encrypted); retire the old key."""
    new_id, rewrapped, retired = context.state.registry().rotate_master_key()
    if json_:
        return print_json({"current_key": new_id, "rewrapped": rewrapped, "retired": retired})
    context.console.print(
        f"master key {new_id}: {rewrapped} data key(s) re-wrapped, retired {', '.join(retired) or 'none'}")
