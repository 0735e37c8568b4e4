"""Sampled prediction logs: records queued by the request path, written by one thread as Parquet, one row
per batch row, partitioned `model=M/version=V/hour=YYYY-MM-DDTHH/`, and pruned past a retention limit.

The request path only appends to a bounded deque (no lock, no I/O): when the writer falls behind, records
are dropped and counted (`maas_prediction_log_dropped_total`), never waited for. Tensors are reduced to the
monitored features (`features.py`: images become per-image summaries) unless `full_inputs` asks for the
raw values too. Files go through a `LogWriter`, the seam where encryption wraps the storage.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter

from maas.errors import NotFound
from maas.monitor.features import input_features, output_features
from maas.monitor.log_writer import LogWriter
from maas.monitor.records import PredictionRecord

log = logging.getLogger(__name__)

HOUR_FORMAT = "%Y-%m-%dT%H"


def partition(model: str, version: int, hour: datetime) -> str:
    return f"model={model}/version={version}/hour={hour.strftime(HOUR_FORMAT)}"


class PredictionLog:
    """`offer` from the event loop; `close` flushes what is queued. Implements `records.PredictionSink`."""

    def __init__(
        self,
        writer: LogWriter,
        *,
        metrics: CollectorRegistry | None = None,
        queue_size: int = 10_000,
        flush_interval_s: float = 1.0,
        retention_hours: float = 24 * 7,
        full_inputs: bool = False,
        autostart: bool = True,
    ) -> None:
        self.writer = writer
        self.queue_size = queue_size
        self.flush_interval_s = flush_interval_s
        self.retention = timedelta(hours=retention_hours)
        self.full_inputs = full_inputs
        self.autostart = autostart  # start the writer thread on the first record (off: call flush yourself)
        self._queue: deque[PredictionRecord] = deque()
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._last_prune = 0.0
        self.dropped = Counter(
            "maas_prediction_log_dropped", "Sampled requests dropped because the log writer fell behind",
            ["model"], registry=metrics,
        )
        self.written = Counter(
            "maas_prediction_log_records", "Sampled requests written to the prediction log", ["model"],
            registry=metrics,
        )

    # --- request path -----------------------------------------------------------------------------------
    def offer(self, record: PredictionRecord) -> None:
        if self._stop:
            return  # shutting down: the server no longer answers requests either
        if len(self._queue) >= self.queue_size:
            self.dropped.labels(record.model).inc()
            return
        self._queue.append(record)
        if self._thread is None and self.autostart:
            self.start()

    # --- writer thread ----------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="maas-prediction-log", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.flush_interval_s)
            try:
                self.flush()
                if time.monotonic() - self._last_prune > 60:
                    self._last_prune = time.monotonic()
                    self.prune()
            except Exception:
                log.exception("writing the prediction log failed; its queued records are lost")

    def flush(self) -> int:
        """Write every queued record (one file per partition); returns the number of requests written."""
        batch: list[PredictionRecord] = []
        while self._queue:
            batch.append(self._queue.popleft())
        by_hour: dict[tuple[str, int, int], list[PredictionRecord]] = {}
        for r in batch:
            by_hour.setdefault((r.model, r.version, int(r.time // 3600)), []).append(r)
        groups = {
            partition(model, version, datetime.fromtimestamp(hour * 3600, UTC)): records
            for (model, version, hour), records in by_hour.items()
        }
        for part, records in groups.items():
            table = self._table(records)
            buffer = io.BytesIO()
            import pyarrow.parquet as pq

            pq.write_table(table, buffer, compression="zstd")
            name = f"{part}/part-{time.time_ns()}-{uuid.uuid4().hex[:8]}.parquet"
            self.writer.write(name, buffer.getvalue())
            self.written.labels(records[0].model).inc(len(records))
        return len(batch)

    def _table(self, records: list[PredictionRecord]) -> Any:
        """One table for the records of a partition: features are computed once per group of records with
        the same tensor shapes (concatenated), not per request; at 100% sampling the per-record Python work
        held the GIL long enough to cost the event loop a third of its throughput."""
        import pyarrow as pa

        groups: dict[tuple[Any, ...], list[PredictionRecord]] = {}
        for r in records:
            key = (*(v.shape[1:] for v in r.inputs.values()), *(v.shape[1:] for v in r.outputs.values()))
            groups.setdefault(key, []).append(r)
        tables = [self._group_table(group, pa) for group in groups.values()]
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")

    def _group_table(self, records: list[PredictionRecord], pa: Any) -> Any:
        first = records[0]
        names = list(first.inputs)
        inputs = {k: np.concatenate([r.inputs[k] for r in records]) for k in names}
        outputs = {k: np.concatenate([r.outputs[k] for r in records]) for k in first.outputs}
        rows = np.array([len(r.inputs[names[0]]) if names else 0 for r in records])
        total = int(rows.sum())
        shapes = json.dumps({k: [-1, *v.shape[1:]] for k, v in first.inputs.items()})

        def per_row(values: list[Any]) -> np.ndarray:
            return np.repeat(np.asarray(values), rows)

        stamps = per_row([int(r.time * 1e6) for r in records])
        data: dict[str, Any] = {
            "time": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "model": pa.array(per_row([r.model for r in records]), pa.string()),
            "version": per_row([r.version for r in records]).astype(np.int64),
            "arm": pa.array(per_row([r.arm for r in records]), pa.string()),
            "request_id": pa.array(per_row([r.request_id for r in records]), pa.string()),
            "latency_ms": per_row([r.latency_s * 1000 for r in records]).astype(np.float64),
            "row": np.arange(total) - np.repeat(np.cumsum(rows) - rows, rows),
            # the group shares every dimension but the batch one (-1 here)
            "shapes": pa.array(np.repeat(shapes, total), pa.string()),
        }
        for k, v in input_features(inputs).items():
            data[f"in.{k}"] = v
        for k, v in output_features(outputs).items():
            data[f"out.{k}"] = v
        if self.full_inputs:
            for k, v in inputs.items():
                if v.dtype != object:
                    data[f"raw.{k}"] = pa.array(list(v.reshape(total, -1).astype(np.float64)))
        return pa.table(data)

    # --- retention and reading --------------------------------------------------------------------------
    def prune(self, now: datetime | None = None) -> int:
        """Delete files of hours older than the retention limit; returns how many."""
        cutoff = (now or datetime.now(UTC)) - self.retention
        removed = 0
        for path in self.writer.list():
            hour = _hour_of(path)
            if hour is not None and hour + timedelta(hours=1) <= cutoff:
                self.writer.delete(path)
                removed += 1
        return removed

    def read(self, model: str, version: int, since: datetime) -> dict[str, np.ndarray]:
        """Logged rows of one version since `since`, as columns; NotFound when nothing was logged."""
        return read_window(self.writer, model, version, since)


def read_window(
    writer: LogWriter, model: str, version: int, since: datetime, cache: WindowCache | None = None
) -> dict[str, np.ndarray]:
    """Logged rows of one version since `since`, as columns; NotFound when nothing was logged. With a
    `cache`, each file (written once, never changed) is read and decoded once, not at every call."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    first_hour = since.replace(minute=0, second=0, microsecond=0)
    tables, wanted = [], []
    for path in _files(writer, model, version):
        hour = _hour_of(path)
        if hour is None or hour < first_hour:
            continue
        wanted.append(path)
        table = cache.get(path) if cache is not None else None
        if table is None:
            table = pq.read_table(io.BytesIO(writer.read(path)))
            if cache is not None:
                cache.put(path, table)
        tables.append(table.filter(pc.greater_equal(table["time"], pa.scalar(since, pa.timestamp("us", tz="UTC")))))
    if cache is not None:
        cache.keep_only(f"model={model}/version={version}/", wanted)
    table = pa.concat_tables(tables, promote_options="default") if tables else None
    if table is None or table.num_rows == 0:
        raise NotFound(f"no logged requests for {model}:{version} since {since.isoformat(timespec='seconds')}")
    return {name: table[name].to_numpy(zero_copy_only=False) for name in table.column_names}


class WindowCache:
    """Decoded log files by path, for readers that come back to the same window (the drift gauges); files
    that leave the window or the store are forgotten, so it holds one window per version at most."""

    def __init__(self) -> None:
        self._tables: dict[str, Any] = {}
        self.reads = 0  # files decoded so far (for tests and curiosity)

    def get(self, path: str) -> Any:
        return self._tables.get(path)

    def put(self, path: str, table: Any) -> None:
        self._tables[path] = table
        self.reads += 1

    def keep_only(self, prefix: str, paths: list[str]) -> None:
        keep = set(paths)
        for path in [p for p in self._tables if p.startswith(prefix) and p not in keep]:
            del self._tables[path]


def _files(writer: LogWriter, model: str, version: int) -> Iterator[str]:
    yield from writer.list(f"model={model}/version={version}")


def _hour_of(path: str) -> datetime | None:
    for part in path.split("/"):
        if part.startswith("hour="):
            try:
                return datetime.strptime(part[5:], HOUR_FORMAT).replace(tzinfo=UTC)
            except ValueError:
                return None
    return None
