"""The share of a model's requests that the prediction log keeps: the version's `log_sample_rate`, or the
server's `--set NAME.log_sample_rate=R` override; off (0) unless one of them says otherwise."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from maas.errors import InvalidArgument


def check_rate(value: Any, what: str = "log_sample_rate") -> float:
    """A rate in [0, 1], else InvalidArgument naming it."""
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = math.nan
    if isinstance(value, bool) or not 0.0 <= rate <= 1.0:
        raise InvalidArgument(f"{what} must be a number between 0 and 1, not {str(value)[:40]!r}")
    return rate


def sample_rate(config: Mapping[str, Any], override: Any = None) -> float:
    """The effective rate of one version (`override` is the model's ModelOverrides, if any)."""
    forced = getattr(override, "log_sample_rate", None)
    if forced is not None:
        return check_rate(forced)
    return check_rate(config.get("log_sample_rate", 0.0))
