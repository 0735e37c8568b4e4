"""Usage errors as the README promises them: one `error: …` line on stderr (a JSON `{"error": …}` with
`--json`) and the exit code of the error table, instead of Click's multi-line usage box."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

try:  # newer typer vendors Click and raises its own copies of Click's exceptions
    from typer._click import exceptions as click
except ImportError:  # older typer uses Click itself
    from click import exceptions as click  # type: ignore[no-redef]

from maas.cli import context

_NEGATIVE_NUMBER = re.compile(r"-\d+(\.\d*)?")
USAGE_EXIT = 2  # Click's own status for usage errors, and the table's INVALID_ARGUMENT


class OneLineErrorsGroup(TyperGroup):
    """The root command group: runs Click in non-standalone mode and reports its errors in one line."""

    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
        standalone_mode: bool = True, **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        context.state.json_errors = "--json" in argv
        try:
            rv = super().main(
                args=argv, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra
            )
        except typer.Exit as exc:  # typer.Exit raised outside a command's invocation
            rv = exc.exit_code
        except click.UsageError as exc:
            fail_standalone(_usage_message(exc, argv), USAGE_EXIT, standalone_mode)
            return USAGE_EXIT
        except click.ClickException as exc:
            fail_standalone(exc.format_message(), exc.exit_code, standalone_mode)
            return exc.exit_code
        except typer.Abort:
            fail_standalone("aborted", 1, standalone_mode)
            return 1
        code = rv if isinstance(rv, int) else 0  # Click returns an Exit's code in non-standalone mode
        if standalone_mode:
            sys.exit(code)
        return rv


def fail_standalone(message: str, code: int, standalone_mode: bool) -> None:
    try:
        context.fail(message, code)
    except typer.Exit:
        if standalone_mode:
            sys.exit(code)


def _usage_message(exc: click.UsageError, argv: list[str]) -> str:
    message = exc.format_message().rstrip(".")
    if isinstance(exc, click.NoSuchOption) and _NEGATIVE_NUMBER.fullmatch(exc.option_name):
        message = f"{exc.option_name} is read as an option; a negative number is not a valid value here"
    command = exc.ctx.command_path if exc.ctx is not None else "maas"
    return f"{message} (see '{command} --help')"
