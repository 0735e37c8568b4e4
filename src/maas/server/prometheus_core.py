"""prometheus_client's metric classes without what its package `__init__` imports besides: the exposition module
(http.server, wsgiref, socketserver, the push gateway) and the process, platform and gc collectors it registers
on the global registry, ~20 ms of CPU before ready (issue #19). maas's collectors live on registries of its own,
and its text exposition (`/metrics`, the console's history) comes after ready. The package is entered unrun
(package_entry.py) holding the metric classes and `CollectorRegistry`; `generate_latest`, `REGISTRY` and the rest
run its real `__init__` on first use, so the global registry still gets its default collectors.
"""

from __future__ import annotations

from maas.server.package_entry import enter_without_init

_package = enter_without_init("prometheus_client")

from prometheus_client.metrics import Counter, Enum, Gauge, Histogram, Info, Summary  # noqa: E402
from prometheus_client.metrics_core import Metric  # noqa: E402
from prometheus_client.registry import CollectorRegistry  # noqa: E402

if _package is not None:  # what maas and prometheus_client's own modules take from the package before ready
    for _value in (Counter, Enum, Gauge, Histogram, Info, Summary, Metric, CollectorRegistry):
        setattr(_package, _value.__name__, _value)

__all__ = ["CollectorRegistry", "Counter", "Gauge", "Histogram"]
