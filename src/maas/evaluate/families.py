"""`maas cv`'s estimators: the families of `train/families.py` (one allow-list for train and cv), with
parameters given as `key=value` text and checked against the estimator's own parameters."""

from __future__ import annotations

import ast
from typing import Any

from maas.errors import InvalidArgument
from maas.evaluate.datasets import Task


def family_names() -> list[str]:
    from maas.training.families import SKLEARN_FAMILIES

    return sorted(SKLEARN_FAMILIES)


def family_task(name: str, hint: str | None = None) -> Task:
    from maas.training import families

    return families.family_task(name, hint)


def make_estimator(name: str, params: dict[str, str] | None = None, task: str | None = None, seed: int = 0) -> Any:
    """A fresh, unfitted estimator of family `name` for `task` (default: what the family does first) with
    `params` (text values parsed as Python literals)."""
    from maas.training import families

    task = families.family_task(name, task)
    values = {key: parse_value(text) for key, text in (params or {}).items()}
    probe = families.make_estimator(name, task, {}, seed)
    valid = probe.get_params()
    for key in values:
        if key not in valid:
            raise InvalidArgument(f"{name} has no parameter {key!r}; it has {sorted(valid)}")
    try:
        return probe.set_params(**values)
    except (ValueError, TypeError) as exc:
        raise InvalidArgument(f"invalid parameters for {name}: {exc}") from None


def parse_param(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise InvalidArgument(f"invalid parameter {text[:80]!r}: expected KEY=VALUE")
    return key.strip(), value.strip()


def parse_value(text: str) -> Any:
    """`10` -> 10, `0.5` -> 0.5, `None`/`True` -> literals, anything else stays a string (e.g. `rbf`)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
