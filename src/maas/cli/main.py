"""`maas` command line: registry verbs, `config`, `gc` and `serve`. No logic of its own: it calls the core."""

from __future__ import annotations

import importlib
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from maas import __version__
from maas.cli import audited, context
from maas.cli.context import exit_codes_text, handle_errors, print_json, set_home, state
from maas.cli.encryption_cmd import encryption_app
from maas.cli.quiet import quiet_third_parties
from maas.cli.usage import OneLineErrorsGroup

# The commands of the other command modules, by name, in the order `maas --help` lists them. A module is
# imported (and its commands built) when one of its commands is invoked or the commands are listed, so that
# `maas serve` does not pay for the rest of the CLI at start (issue #19).
COMMAND_MODULES = {
    "import": "import_cmd", "export": "import_cmd", "eval": "eval_cmd", "compare": "eval_cmd", "cv": "eval_cmd",
    "optimize": "optimize_cmd", "train": "train_cmd", "jobs": "jobs_cmd", "monitor": "monitor_cmd",
    "keys": "keys_cmd", "audit": "keys_cmd", "traffic": "traffic_cmd", "rollout": "traffic_cmd",
    "explain": "explain_cmd",
}


class LazyCommandsGroup(OneLineErrorsGroup):
    """The root group: `COMMAND_MODULES` are registered on first use, each on a Typer of its own whose changing
    verbs are wrapped for the audit log (audited.py), as the root's own are."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        module = COMMAND_MODULES.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            self._load(module)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: Any) -> list[str]:
        for module in dict.fromkeys(COMMAND_MODULES.values()):
            self._load(module)
        # Typer lists a Typer's commands before its groups, each in the order they were added: so here too.
        return sorted(super().list_commands(ctx), key=lambda name: isinstance(self.commands[name], TyperGroup))

    def _load(self, module: str) -> None:
        if all(name in self.commands for name, m in COMMAND_MODULES.items() if m == module):
            return
        sub = typer.Typer()
        importlib.import_module(f"maas.cli.{module}").register(sub)
        audited.install(sub)
        for name, command in typer.main.get_group(sub).commands.items():
            self.add_command(command, name)


app = typer.Typer(
    name="maas", help="maas: register, convert, optimize and serve models.", no_args_is_help=True,
    pretty_exceptions_enable=False, add_completion=False, cls=LazyCommandsGroup,
    epilog=f"Exit codes: {exit_codes_text()}.",
)
models_app = typer.Typer(help="Models in the registry.", no_args_is_help=True)
versions_app = typer.Typer(help="Versions of a model.", no_args_is_help=True)
alias_app = typer.Typer(help="Aliases (production, staging, …) pointing at versions.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(versions_app, name="versions")
app.add_typer(alias_app, name="alias")
app.add_typer(encryption_app, name="encryption")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _version_cb(value: bool) -> None:
    if value:
        context.console.print(f"maas {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    home: Annotated[Path | None, typer.Option(help="Registry home (env MAAS_HOME, default ~/.maas).")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL (env MAAS_DATABASE_URL).")] = None,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version_cb, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    quiet_third_parties()
    set_home(home, database_url)


# --- models ----------------------------------------------------------------------------------------------
@models_app.command("list")
@handle_errors
def models_list(json_: JsonFlag = False) -> None:
    """List models with their newest version and aliases."""
    from rich.table import Table

    models = state.registry().list_models()
    if json_:
        return print_json([m.to_dict() for m in models])
    table = Table("name", "latest", "aliases", "description")
    for m in models:
        aliases = ", ".join(f"{k}→{v}" for k, v in m.aliases.items())
        table.add_row(m.name, str(m.latest_version or "-"), aliases, m.description)
    context.console.print(table)


@models_app.command("show")
@handle_errors
def models_show(name: str, json_: JsonFlag = False) -> None:
    """Show one model and its versions."""
    reg = state.registry()
    model, versions = reg.get_model(name), reg.list_versions(name)
    if json_:
        return print_json({**model.to_dict(), "versions": [v.to_dict() for v in versions]})
    context.console.print(f"[bold]{model.name}[/bold]  {model.description}")
    for k, v in model.tags.items():
        context.console.print(f"  tag {k}={v}")
    _print_versions(versions)


@models_app.command("delete")
@handle_errors
def models_delete(
    name: str, yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False
) -> None:
    """Delete a model and all its versions (blobs are freed by `maas gc`)."""
    reg = state.registry()
    reg.get_model(name)
    if not yes:
        typer.confirm(f"Delete model {name!r} and all its versions?", abort=True)
    reg.delete_model(name)
    context.console.print(f"deleted {name}")


# --- versions --------------------------------------------------------------------------------------------
def _print_versions(versions: list) -> None:  # type: ignore[type-arg]
    from rich.table import Table

    table = Table("version", "state", "aliases", "format", "parent", "created", "description")
    for v in versions:
        parent = f"{v.lineage.parent} ({v.lineage.transform})" if v.lineage.parent else "-"
        created = v.created_at.strftime("%Y-%m-%d %H:%M") if v.created_at else ""
        table.add_row(
            str(v.version), str(v.state), ", ".join(v.aliases), v.source_format, parent, created, v.description
        )
    context.console.print(table)


@versions_app.command("list")
@handle_errors
def versions_list(name: str, json_: JsonFlag = False) -> None:
    """List the versions of a model."""
    versions = state.registry().list_versions(name)
    if json_:
        return print_json([v.to_dict() for v in versions])
    _print_versions(versions)


@versions_app.command("show")
@handle_errors
def versions_show(
    ref: Annotated[str, typer.Argument(help="name, name:3 or name@alias")], json_: JsonFlag = False
) -> None:
    """Show a version's whole record."""
    v = state.registry().get(ref)
    if json_:
        return print_json(v.to_dict())
    d = v.to_dict()
    context.console.print(f"[bold]{v.ref}[/bold]  {v.state}  {v.description}")
    for key in ("aliases", "tags", "source_format", "lineage", "signature", "config", "metrics", "parity"):
        if d.get(key):
            context.console.print(f"  {key}: ", d[key], highlight=False)
    for a in v.artifacts:
        context.console.print(f"  artifact {a.role}: sha256:{a.sha256} ({a.size} bytes)")
    context.console.print(f"  created {d['created_at']} by {v.created_by}")


@versions_app.command("archive")
@handle_errors
def versions_archive(ref: str, json_: JsonFlag = False) -> None:
    """Archive a version: readable by number, no longer served by default."""
    v = state.registry().archive(ref)
    if json_:
        return print_json(v.to_dict())
    context.console.print(f"archived {v.ref}")


# --- aliases and tags ------------------------------------------------------------------------------------
# A version such as -1 would otherwise be read as an unknown option; set_alias then refuses it by name.
@alias_app.command("set", context_settings={"ignore_unknown_options": True})
@handle_errors
def alias_set(name: str, alias: str, version: str, json_: JsonFlag = False) -> None:
    """Point ALIAS of model NAME at VERSION (creating or moving it)."""
    v = state.registry().set_alias(name, alias, version)
    if json_:
        return print_json(v.to_dict())
    context.console.print(f"{name}@{alias} → {v.version}")


@alias_app.command("rm")
@handle_errors
def alias_rm(name: str, alias: str) -> None:
    """Remove an alias."""
    state.registry().remove_alias(name, alias)
    context.console.print(f"removed {name}@{alias}")


@app.command("tag")
@handle_errors
def tag(
    ref: Annotated[str, typer.Argument(help="Version reference (name, name:3, name@alias)")],
    tags: Annotated[list[str] | None, typer.Argument(help="KEY=VALUE pairs to set")] = None,
    remove: Annotated[list[str] | None, typer.Option("--rm", help="Tag key to remove")] = None,
    model: Annotated[bool, typer.Option("--model", help="Tag the model instead of a version")] = False,
    json_: JsonFlag = False,
) -> None:
    """Set or remove tags on a version (or, with --model, on the model)."""
    from maas.types import ModelRef, parse_tag

    pairs = dict(parse_tag(t) for t in tags or [])
    reg = state.registry()
    if model:
        m = reg.update_model(ModelRef.parse(ref).name, tags=pairs, remove_tags=remove)
        if json_:
            return print_json(m.to_dict())
        context.console.print(f"{m.name} tags: {m.tags}")
        return None
    v = reg.tag(ref, pairs, remove)
    if json_:
        return print_json(v.to_dict())
    context.console.print(f"{v.ref} tags: {v.tags}")
    return None


# --- operations ------------------------------------------------------------------------------------------
@app.command("config")
@handle_errors
def config(json_: JsonFlag = False) -> None:
    """Print the effective settings (env vars MAAS_*, then flags), secrets masked."""
    data = state.settings().redacted()
    if json_:
        return print_json(data)
    for k, v in data.items():
        context.console.print(f"{k} = {v}", highlight=False, markup=False)


@app.command("gc")
@handle_errors
def gc(
    grace: Annotated[float, typer.Option(help="Only remove leftovers older than this many seconds.")] = 3600.0,
    json_: JsonFlag = False,
) -> None:
    """Remove what crashes and deletions left behind: temp files, unreferenced blobs, expired uploads."""
    report = state.registry().gc(timedelta(seconds=grace))
    if json_:
        return print_json(report.to_dict())
    context.console.print(
        f"removed {report.removed_blobs} blobs, {report.removed_temp_files} temp files, "
        f"{report.removed_pending_versions} pending versions, {report.removed_uploads} expired uploads; "
        f"freed {report.freed_bytes} bytes"
    )


@app.command("serve")
@handle_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (env MAAS_HOST, default 127.0.0.1).")] = None,
    http_port: Annotated[int | None, typer.Option(help="HTTP port (env MAAS_HTTP_PORT, default 8000).")] = None,
    grpc_port: Annotated[int | None, typer.Option(help="gRPC port (env MAAS_GRPC_PORT, default 8001).")] = None,
    models: Annotated[list[str] | None, typer.Option("--models", help="Serve only these models (repeatable).")] = None,
    api_key: Annotated[str | None, typer.Option(help="Require this bearer token (env MAAS_API_KEY).")] = None,
    tls_cert: Annotated[Path | None, typer.Option(
        help="PEM certificate: HTTPS and gRPC over TLS (env MAAS_TLS_CERT).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert (env MAAS_TLS_KEY).")] = None,
    tls_client_ca: Annotated[Path | None, typer.Option(
        help="PEM CA: require client certificates it signed, mTLS (env MAAS_TLS_CLIENT_CA).")] = None,
    override: Annotated[list[str] | None, typer.Option(
        "--set", help="Batching override NAME.KEY=VALUE (max_batch_size, max_queue_delay_us, "
                      "preferred_batch_sizes, instances, intra_op_threads, log_sample_rate); repeatable.")] = None,
    trace: Annotated[bool, typer.Option("--trace", help="Export OpenTelemetry spans over OTLP (env OTEL_*).")] = False,
    max_queue_size: Annotated[int | None, typer.Option(
        help="Requests queued per loaded version before 429 (env MAAS_MAX_QUEUE_SIZE, default 1024).")] = None,
    max_queue_wait_ms: Annotated[float | None, typer.Option(
        help="Refuse at once (429) a request expected to queue longer (env MAAS_MAX_QUEUE_WAIT_MS, default 500).")
    ] = None,
    allow_remote_trust: Annotated[bool | None, typer.Option(
        "--allow-remote-trust", help="Let admin-key callers upload code-running formats with trust=true "
                                     "(env MAAS_ALLOW_REMOTE_TRUST, default off).")] = None,
    inference_threads: Annotated[int | None, typer.Option(
        help="Threads running model code (env MAAS_INFERENCE_THREADS, default the CPU count).")] = None,
    request_timeout_s: Annotated[float | None, typer.Option(
        "--request-timeout", help="Default request deadline in seconds (env MAAS_REQUEST_TIMEOUT_S, 60).")] = None,
    poll_interval_s: Annotated[float | None, typer.Option(
        "--poll-interval", help="Seconds between registry checks (env MAAS_POLL_INTERVAL_S, 0.5).")] = None,
    use_cuda: Annotated[bool | None, typer.Option(
        "--cuda/--no-cuda", help="onnxruntime's CUDA provider (env MAAS_USE_CUDA, off).")] = None,
    ray: Annotated[str | None, typer.Option(
        "--ray", metavar="[ADDRESS|auto|local]",
        help="Serve on a Ray cluster (needs the `ray` extra): one Ray Serve deployment per model (models "
             "registered while it runs get theirs), with --set NAME.num_replicas / min_replicas / max_replicas / "
             "target_ongoing_requests. auto: the "
             "cluster `ray start` runs here (also `--ray` alone); local: a one-node Ray in this process.")] = None,
) -> None:
    """Serve the registry: control API, KServe v2 REST and gRPC, and the web console at /, in one process (or on
    Ray with --ray)."""

    flags = {"host": host, "http_port": http_port, "grpc_port": grpc_port, "api_key": api_key,
             "tracing": trace or None, "allow_remote_trust": allow_remote_trust, "max_queue_size": max_queue_size,
             "max_queue_wait_ms": max_queue_wait_ms, "tls_cert": tls_cert, "tls_key": tls_key,
             "tls_client_ca": tls_client_ca, "inference_threads": inference_threads,
             "request_timeout_s": request_timeout_s, "poll_interval_s": poll_interval_s, "use_cuda": use_cuda}
    if ray is not None:
        from maas.cluster.scaling import split_overrides
        from maas.serving.options import parse_overrides

        parse_overrides(split_overrides(override or [])[1])  # a bad --set fails before Ray is imported
        from maas.cluster.run import run as run_on_ray

        return run_on_ray(state.settings(**{k: v for k, v in flags.items() if v is not None}), ray,
                          models=models or None, overrides=override or None)
    # OpenBLAS's threads (numpy's, loaded next) spin 2^28 cycles (~0.1 s of a core each) after they start and after
    # each call before they sleep: ~0.1 s of CPU at start that competed with it (issue #19), and after every BLAS call
    # while serving. 4 is OpenBLAS's least (2^4 cycles); a user's own setting wins.
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    from maas.server.collector_pause import collector_paused

    with collector_paused():  # until the server is ready (`_Server.startup`): see collector_pause.py
        from maas.server.main import run
        from maas.serving.options import parse_overrides

        parse_overrides(override or [])  # a bad --set fails here, as a one-line error, before anything starts
        run(state.settings(**{k: v for k, v in flags.items() if v is not None}), models=models or None,
            overrides=override or None)


@app.command("demo")
@handle_errors
def demo(
    epochs: Annotated[int, typer.Option(min=1, max=100, help="Training epochs of the demo CNN.")] = 8,
    json_: JsonFlag = False,
) -> None:
    """Register the demo models the registry lacks: `digits` (Keras CNN, fp32 + int8), `smollm2`, `minilm`."""
    from maas import demo as seed_demo

    reg = state.registry()
    say = (lambda _m: None) if json_ else typer.echo
    made = seed_demo.seed(reg, epochs=epochs, say=say)
    from maas.llm import demo as llm_demo

    made += llm_demo.seed(reg, say=say)  # smollm2 and minilm, each once
    if json_:
        return print_json([v.to_dict() for v in made])
    if not made:
        context.console.print("the registry already has the digits demo; nothing added")


audited.install(app)  # the root's own changing verbs (the command modules' are wrapped as they load)


def main() -> None:
    """The `maas` command (the console script and `python -m maas.cli`)."""
    app(args=bare_ray_means_auto(sys.argv[1:]), prog_name="maas")


def bare_ray_means_auto(args: list[str]) -> list[str]:
    """`maas serve --ray` alone means `--ray auto`, as the documented `--ray [ADDRESS|auto]` says. Typer has no
    options with an optional value (its `flag_value` is deprecated), so the bare flag is completed before parsing."""
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--ray" and (i + 1 == len(args) or args[i + 1].startswith("-")):
            return [*args[: i + 1], "auto", *args[i + 1:]]
    return list(args)
