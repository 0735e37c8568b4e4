"""maas's drift tests against Evidently's own on the same data: for numeric (more than 5 values),
categorical and binary columns, with a small and a large reference, both choose the same test and reach the
same statistic and the same verdict, per column and for the data set (Evidently in the dev extra)."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from maas.monitor.drift import DRIFT_SHARE, column_drift

os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently's usage telemetry (its UI service only) stays off
pd = pytest.importorskip("pandas")
_common = pytest.importorskip("pandas.core.dtypes.common")
if not hasattr(_common, "infer_dtype_from_object"):
    # pandas 3 removed this private helper; Evidently 0.7.23 imports it for a legacy test this file never runs
    _common.infer_dtype_from_object = lambda dtype: dtype  # type: ignore[attr-defined]
evidently = pytest.importorskip("evidently")
from evidently import Report  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

# Evidently's name of each test -> maas's
METHODS = {"K-S p_value": "ks", "chi-square p_value": "chisquare", "Z-test p_value": "z",
           "Wasserstein distance (normed)": "wasserstein", "Jensen-Shannon distance": "jensenshannon"}


def columns(rng: np.random.Generator, rows: int, shift: float) -> dict[str, np.ndarray]:
    return {
        "numeric": rng.normal(shift, size=rows),
        "six_values": rng.integers(0, 6, rows).astype(float) + (rng.random(rows) < shift) * 0.5,
        "categorical": rng.choice([1.0, 2.0, 3.0], rows, p=[0.2, 0.3, 0.5] if not shift else [0.4, 0.3, 0.3]),
        "five_values": rng.integers(0, 5, rows).astype(float),
        "binary": (rng.random(rows) < 0.3 + 0.2 * shift).astype(float),
    }


@pytest.mark.parametrize("reference_rows", [500, 3000])  # Evidently's small and large reference
@pytest.mark.parametrize("shift", [0.0, 0.5])
def test_test_choice_statistics_and_verdicts_equal_evidentlys(reference_rows: int, shift: float) -> None:
    rng = np.random.default_rng(reference_rows + int(shift * 10))
    reference = pd.DataFrame(columns(rng, reference_rows, 0.0))
    current = pd.DataFrame(columns(rng, 400, shift))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy's and plotly's warnings inside Evidently
        snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference).dict()
    theirs = {m["config"]["column"]: m for m in snapshot["metrics"] if m["config"]["type"].endswith("ValueDrift")}
    [dataset] = [m["value"] for m in snapshot["metrics"] if m["config"]["type"].endswith("DriftedColumnsCount")]
    assert set(theirs) == set(reference.columns)
    drifted = 0
    for name, metric in theirs.items():
        ours = column_drift(name, reference[name].to_numpy(), current[name].to_numpy())
        method = METHODS[metric["config"]["method"]]
        assert ours.method == method, name
        assert ours.threshold == metric["config"]["threshold"], name
        assert ours.statistic == pytest.approx(metric["value"], rel=1e-9, abs=1e-12), name
        p_value = metric["config"]["method"].endswith("p_value")
        evidently_drifted = metric["value"] < ours.threshold if p_value else metric["value"] >= ours.threshold
        assert ours.drifted == evidently_drifted, name
        drifted += ours.drifted
    assert drifted == dataset["count"]
    assert (drifted / len(theirs) >= DRIFT_SHARE) == (dataset["share"] >= DRIFT_SHARE)
