"""The monitor core without a server: tests chosen as Evidently chooses them, features, the log's queue,
partitions and retention, sampling rates and reference statistics in the registry."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from maas.errors import InvalidArgument, NotFound
from maas.monitor.drift import column_drift
from maas.monitor.features import input_features, output_features
from maas.monitor.log_writer import FsspecLogWriter
from maas.monitor.prediction_log import PredictionLog, WindowCache, read_window
from maas.monitor.records import PredictionRecord
from maas.monitor.report import parse_since
from maas.monitor.sampling import check_rate, sample_rate
from maas.serving.options import parse_overrides

rng = np.random.default_rng(0)


@pytest.mark.parametrize(
    ("reference", "current", "method", "drifted"),
    [
        (rng.normal(size=500), rng.normal(size=300), "ks", False),
        (rng.normal(size=500), rng.normal(1, size=300), "ks", True),
        (rng.integers(0, 2, 500), rng.integers(0, 2, 300), "z", False),
        (rng.integers(0, 2, 500), np.ones(300), "z", True),
        (rng.integers(0, 4, 500), rng.integers(0, 4, 300), "chisquare", False),
        (rng.integers(0, 4, 500), np.full(300, 3), "chisquare", True),
        (rng.normal(size=3000), rng.normal(size=2000), "wasserstein", False),
        (rng.normal(size=3000), rng.normal(0.5, size=2000), "wasserstein", True),
        (rng.integers(0, 4, 3000), rng.integers(0, 4, 2000), "jensenshannon", False),
        (rng.integers(0, 4, 3000), np.full(2000, 2), "jensenshannon", True),
    ],
)
def test_default_tests_follow_evidently(reference, current, method, drifted):
    result = column_drift("f", reference, current)
    assert result.method == method
    assert result.drifted is drifted


def test_psi_on_request_and_unknown_method():
    ref = rng.normal(size=1000)
    assert not column_drift("f", ref, rng.normal(size=1000), "psi").drifted
    assert column_drift("f", ref, rng.normal(2, size=1000), "psi").drifted
    with pytest.raises(InvalidArgument, match="unknown drift method"):
        column_drift("f", ref, ref, "magic")
    with pytest.raises(InvalidArgument, match="no finite values"):
        column_drift("f", ref, np.array([np.nan]))


def test_features_of_tables_images_and_outputs():
    table = input_features({"x": np.arange(6, dtype=np.float32).reshape(3, 2)})
    assert list(table) == ["x[0]", "x[1]"] and table["x[1]"].tolist() == [1, 3, 5]
    images = input_features({"img": rng.random((2, 8, 8, 3))})  # NHWC
    assert sorted(images) == sorted([f"img.c{c}.{s}" for c in range(3) for s in ("mean", "std")]
                                    + ["img.min", "img.max"])
    nchw = input_features({"img": rng.random((2, 3, 16, 16))})
    assert "img.c2.mean" in nchw and "img.c3.mean" not in nchw
    outs = output_features({"probs": np.array([[0.1, 0.9], [0.8, 0.2]]), "value": np.array([[1.5], [2.5]])})
    assert outs["probs.argmax"].tolist() == [1, 0] and outs["value"].tolist() == [1.5, 2.5]


def _record(t, model="m", version=1, rows=2):
    x = np.arange(rows * 3, dtype=np.float32).reshape(rows, 3)
    return PredictionRecord(model, version, str(version), "rid", t, 0.002, {"x": x}, {"y": x[:, :2]})


def test_log_writes_partitions_drops_when_full_and_prunes(tmp_path):
    metrics = CollectorRegistry()
    plog = PredictionLog(FsspecLogWriter(str(tmp_path)), metrics=metrics, queue_size=3, retention_hours=2,
                         autostart=False)
    now = datetime.now(UTC).timestamp()
    old = now - 5 * 3600
    for t in (now, now, old, now):  # the 4th is one too many for the queue
        plog.offer(_record(t))
    assert metrics.get_sample_value("maas_prediction_log_dropped_total", {"model": "m"}) == 1
    assert plog.flush() == 3
    hours = {p.parent.name for p in tmp_path.rglob("*.parquet")}
    assert len(hours) == 2 and all(p.startswith("hour=") for p in hours)
    window = read_window(plog.writer, "m", 1, datetime.now(UTC) - timedelta(hours=1))
    assert len(window["request_id"]) == 4  # two requests of two rows
    assert window["in.x[2]"].tolist() == [2, 5, 2, 5]
    assert plog.prune() == 1
    assert len(list(tmp_path.rglob("*.parquet"))) == 1
    with pytest.raises(NotFound, match="no logged requests"):
        read_window(plog.writer, "m", 2, datetime.now(UTC) - timedelta(hours=1))


def test_sampling_rates_are_checked():
    assert sample_rate({}) == 0.0
    assert sample_rate({"log_sample_rate": 0.25}) == 0.25
    assert parse_overrides(["m.log_sample_rate=0.1"])["m"].log_sample_rate == 0.1
    assert sample_rate({"log_sample_rate": 0.25}, parse_overrides(["m.log_sample_rate=1"])["m"]) == 1.0
    for bad in ("1.5", "-0.1", "nan", "often"):
        with pytest.raises(InvalidArgument, match="between 0 and 1"):
            parse_overrides([f"m.log_sample_rate={bad}"])
    with pytest.raises(InvalidArgument):
        check_rate(True)


def test_windows():
    assert parse_since("90s") == timedelta(seconds=90)
    assert parse_since("1h") == timedelta(hours=1)
    for bad in ("", "h", "-1h", "1y", "0m"):
        with pytest.raises(InvalidArgument, match="invalid window"):
            parse_since(bad)


class CountingWriter(FsspecLogWriter):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.reads = 0

    def read(self, path: str) -> bytes:
        self.reads += 1
        return super().read(path)


def test_a_window_cache_reads_each_file_once_and_forgets_files_gone(tmp_path):
    writer = CountingWriter(str(tmp_path))
    plog = PredictionLog(writer, autostart=False)
    now = datetime.now(UTC).timestamp()
    since = datetime.now(UTC) - timedelta(hours=1)
    cache = WindowCache()
    plog.offer(_record(now))
    plog.flush()
    assert len(read_window(writer, "m", 1, since, cache)["request_id"]) == 2
    assert len(read_window(writer, "m", 1, since, cache)["request_id"]) == 2
    assert writer.reads == 1  # the second refresh decoded nothing
    plog.offer(_record(now))
    plog.flush()
    assert len(read_window(writer, "m", 1, since, cache)["request_id"]) == 4
    assert writer.reads == 2  # only the new file
    paths = writer.list()
    assert all(cache.get(p) is not None for p in paths)
    for path in paths:
        writer.delete(path)
    with pytest.raises(NotFound):
        read_window(writer, "m", 1, since, cache)
    assert all(cache.get(p) is None for p in paths)  # forgotten with the files
