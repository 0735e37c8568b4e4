"""Drift figures as Prometheus gauges, refreshed on a schedule by one daemon thread, so alert rules can fire
on them: per model, version and feature (`maas_drift_score`, `maas_drift_detected`), and per version the
data-set verdict, the share of drifted features and the share of outlier requests."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Gauge

from maas.errors import MaasError
from maas.monitor.log_writer import LogWriter
from maas.monitor.prediction_log import WindowCache

if TYPE_CHECKING:
    from maas.monitor.report import DriftReport

log = logging.getLogger(__name__)


class DriftGauges:
    def __init__(
        self, registry: Any, writer: LogWriter, versions: Callable[[], Iterable[tuple[str, str]]],
        metrics: CollectorRegistry, *, interval_s: float = 300.0, window: str = "1h",
    ) -> None:
        self.registry, self.writer, self.versions = registry, writer, versions
        self.interval_s, self.window = interval_s, window
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.cache = WindowCache()  # each log file is decrypted and decoded once, not at every refresh
        labels = ["model", "version", "feature"]
        self.score = Gauge("maas_drift_score", "Drift test value per feature (p-value or distance)", labels,
                           registry=metrics)
        self.detected = Gauge("maas_drift_detected", "1 when the feature's drift test fired", labels,
                              registry=metrics)
        self.dataset = Gauge("maas_dataset_drift", "1 when the version's inputs drifted as a data set",
                             ["model", "version"], registry=metrics)
        self.share = Gauge("maas_drift_share", "Share of input features that drifted", ["model", "version"],
                           registry=metrics)
        self.outliers = Gauge("maas_outlier_share", "Share of logged requests scored as outliers",
                              ["model", "version"], registry=metrics)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="maas-drift-gauges", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.refresh()

    def refresh(self) -> int:
        """Recompute every served version that has a reference and logged data; returns how many."""
        from maas.monitor.report import drift_report  # scipy: only once there is something to judge

        done = 0
        for model, version in list(self.versions()):
            try:
                self.publish(drift_report(self.registry, self.writer, model, version, self.window, cache=self.cache))
                done += 1
            except MaasError as exc:  # no reference, no data in the window: nothing to report
                log.debug("no drift figures for %s:%s: %s", model, version, exc.message)
            except Exception:
                log.exception("computing drift of %s:%s failed", model, version)
        return done

    def publish(self, report: DriftReport) -> None:
        model, version = report.model, str(report.version)
        tests = list(report.features) + ([report.prediction] if report.prediction else [])
        for t in tests:
            self.score.labels(model, version, t.column).set(t.statistic)
            self.detected.labels(model, version, t.column).set(1.0 if t.drifted else 0.0)
        self.dataset.labels(model, version).set(1.0 if report.dataset_drift else 0.0)
        self.share.labels(model, version).set(report.share_drifted)
        self.outliers.labels(model, version).set(report.outliers["outlier_share"])
