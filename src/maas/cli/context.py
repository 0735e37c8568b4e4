"""What every CLI command shares: settings from env + flags, one registry, JSON or human output, and turning
MaasError into a one-line message with a non-zero exit code (no traceback)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer

from maas.config import Settings
from maas.errors import Code, InvalidArgument, MaasError

EXIT_CODES = {
    Code.INVALID_ARGUMENT: 2,
    Code.NOT_FOUND: 3,
    Code.ALREADY_EXISTS: 4,
    Code.FAILED_PRECONDITION: 5,
    Code.RESOURCE_EXHAUSTED: 6,
    Code.UNAVAILABLE: 7,
    Code.DEADLINE_EXCEEDED: 8,
    Code.UNAUTHENTICATED: 9,
    Code.PERMISSION_DENIED: 9,
    Code.DATA_LOSS: 10,
    Code.PERMISSION_DENIED: 11,
    Code.INTERNAL: 1,
}


def __getattr__(name: str) -> Any:
    """`console` and `err_console` (rich consoles on stdout and stderr), made on first use: rich is not
    imported by `maas serve`, which prints nothing through them unless it fails."""
    if name in ("console", "err_console"):
        from rich.console import Console

        value = globals()[name] = Console(stderr=name == "err_console")
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class CliState:
    """Global flags, set by the root callback; the registry is opened lazily, once."""

    def __init__(self) -> None:
        self.overrides: dict[str, Any] = {}
        self._registry: Any = None
        self.json_errors = False  # `--json` on the command line: errors as {"error": …} too

    def settings(self, **more: Any) -> Settings:
        from pydantic import ValidationError

        try:
            return Settings(**{**self.overrides, **more})
        except ValidationError as exc:  # a bad MAAS_* variable or flag: one line naming it
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise InvalidArgument(f"invalid setting {where} (env MAAS_{where.upper()}): {first['msg']}") from None

    def registry(self) -> Any:
        if self._registry is None:
            from maas.registry import Registry

            self._registry = Registry(self.settings())
        return self._registry


state = CliState()


def set_home(home: Path | None, database_url: str | None) -> None:
    if home is not None:
        state.overrides["home"] = home
    if database_url:
        state.overrides["database_url"] = database_url


P = ParamSpec("P")
R = TypeVar("R")


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn MaasError into `error: message` on stderr and the code's exit status."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except MaasError as exc:
            fail(exc.message, EXIT_CODES.get(exc.code, 1))
        except (OSError, ValueError) as exc:  # e.g. an unreadable file named on the command line
            fail(str(exc), 1)

    return wrapper


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr (`error: …`, or `{"error": …}` under `--json`), then exit with `code`."""
    if state.json_errors:
        sys.stderr.write(json.dumps({"error": message}) + "\n")
        sys.stderr.flush()
    else:
        __getattr__("err_console").print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def exit_codes_text() -> str:
    """The exit-code table as `maas --help` and the README print it."""
    names = {0: "success"} | {code: name.value.lower().replace("_", " ") for name, code in EXIT_CODES.items()}
    names[1] = "internal error (or aborted)"
    names[2] = "invalid argument or usage"
    return ", ".join(f"{code} {names[code]}" for code in sorted(names))


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


@contextmanager
def progress(description: str) -> Iterator[None]:
    """A spinner on stderr for long work; silent when stderr is not a terminal."""
    err = __getattr__("err_console")
    if not err.is_terminal:
        yield
        return
    with err.status(description):
        yield
