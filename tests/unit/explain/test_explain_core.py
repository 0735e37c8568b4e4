"""The explain core in-process: attributions that are known, background sets in the registry, the caps,
and the bounded pool (429 when full, 504 past the time limit)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from maas.config import Settings
from maas.errors import DeadlineExceeded, InvalidArgument, ResourceExhausted
from maas.explain import ExplainParams, Limits, Subject, explain
from maas.explain.occlusion import window_positions
from maas.explain.service import ExplainService
from maas.registry import Registry
from maas.serving.contract import InferenceRequest, InferTensor

from .explain_models import two_feature_model

ROWS = np.random.default_rng(1).normal(size=(4, 4)).astype(np.float32)


def test_scaled_inputs_are_explained_as_the_client_sends_them(tmp_path: Path) -> None:
    """A pre-processing step (scale) runs inside the scoring function: attributions stay in client units."""
    with Registry.open(tmp_path) as reg:
        v = reg.publish("scaled", {"model.onnx": two_feature_model()},
                        config={"preprocess": [{"op": "scale", "factor": 0.5}]})
        subject = Subject(reg, v, 10**6)
        e = explain(subject, {"x": ROWS}, ExplainParams(method="kernel", baseline=0.0), Limits())
        subject.close()
    expected = ROWS * 0.5 * np.array([3, 0, -2, 0])  # a linear model against a zero baseline: w_i * x_i
    np.testing.assert_allclose(e.attributions["x"], expected, atol=1e-5)
    np.testing.assert_allclose(e.base_values, 1.0, atol=1e-6)


def test_background_sets_are_stored_replaced_and_kept_by_gc(tmp_path: Path) -> None:
    with Registry.open(tmp_path) as reg:
        reg.publish("tab", {"model.onnx": two_feature_model()})
        assert reg.explain_background("tab") is None
        reg.set_explain_background("tab", {"x": np.ones((3, 4))}, source="first")
        reg.set_explain_background("tab:1", {"x": np.zeros((5, 4))}, source="second")
        reg.gc(grace=timedelta(0))
        stored = reg.explain_background("tab")
        assert stored is not None and stored.rows == 5 and stored.source == "second"
        assert not stored.arrays["x"].any()
        with pytest.raises(InvalidArgument, match="same, non-zero number of rows"):
            reg.set_explain_background("tab", {"x": np.ones((3, 4)), "y": np.ones((2, 4))})


def test_stored_background_with_wrong_columns_is_refused(tmp_path: Path) -> None:
    with Registry.open(tmp_path) as reg:
        v = reg.publish("tab", {"model.onnx": two_feature_model()})
        reg.set_explain_background("tab", {"x": np.ones((3, 3))})
        stored = reg.explain_background("tab")
        assert stored is not None
        subject = Subject(reg, v, 10**6)
        with pytest.raises(InvalidArgument, match=r"background set's 'x' has rows of shape \[3\]"):
            explain(subject, {"x": ROWS}, ExplainParams(), Limits(), background=stored.arrays)
        subject.close()


def test_window_positions_cover_every_pixel() -> None:
    covered = np.zeros((10, 7), bool)
    for y, x in window_positions(10, 7, 3, 3):
        covered[y:y + 3, x:x + 3] = True
    assert covered.all()
    assert window_positions(4, 4, 8, 8) == [(0, 0)]


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"method": 3}, "method must be a string"),
        ({"speed": "fast"}, "unknown explain parameter"),
        ({"max_evals": 0}, "max_evals must be an integer"),
        ({"heatmap_png": "yes"}, "heatmap_png must be true or false"),
    ],
)
def test_parameters_are_checked(parameters: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        ExplainParams.parse(parameters)


def _request(rows: np.ndarray) -> InferenceRequest:
    return InferenceRequest("tab", None, [InferTensor("x", "FP32", rows.shape, rows)],
                            parameters={"method": "kernel", "max_evals": 50})


def _service(home: Path, **settings: object) -> ExplainService:
    reg = Registry.open(home)

    async def resolve(name: str, version: str | None) -> object:
        return await asyncio.to_thread(reg.get, name)

    return ExplainService(reg, Settings(home=home, **settings), resolve, 10**6)  # type: ignore[arg-type]


def test_pool_full_is_resource_exhausted(explain_home: Path) -> None:
    service = _service(explain_home, explain_workers=1, explain_queue=0)

    async def main() -> None:
        await service.explain(_request(ROWS))  # opens the subject
        (subject,) = service._subjects.values()
        with subject.running:  # the one worker is now held inside an explanation
            first = asyncio.ensure_future(service.explain(_request(ROWS)))
            await asyncio.sleep(0.2)
            with pytest.raises(ResourceExhausted, match="pool is full"):
                await service.explain(_request(ROWS))
        assert (await first).method == "kernel"

    try:
        asyncio.run(main())
    finally:
        service.close()


def test_past_the_time_limit_is_deadline_exceeded(explain_home: Path) -> None:
    service = _service(explain_home, explain_timeout_s=0.05)

    async def main() -> None:
        await asyncio.to_thread(lambda: None)
        service._subject(service.registry.get("tab"))
        (subject,) = service._subjects.values()
        subject.running.acquire()
        try:
            with pytest.raises(DeadlineExceeded, match="past its 0.05 s limit"):
                await service.explain(_request(ROWS))
        finally:
            subject.running.release()
        # the worker, once it runs, finds its deadline passed and stops at its first model call
        await asyncio.sleep(0.2)
        assert service._in_flight == 0

    try:
        asyncio.run(main())
    finally:
        service.close()


def test_eval_stores_a_background_once(tmp_path: Path) -> None:
    from maas.evaluate import evaluate

    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 4))
    y = (x @ [3, 0, -2, 0] > 0).astype(int)
    np.savetxt(tmp_path / "d.csv", np.c_[x, y], delimiter=",", header="a,b,c,d,y", comments="")
    np.savetxt(tmp_path / "e.csv", np.c_[x[:, :3], y], delimiter=",", header="a,b,c,y", comments="")
    with Registry.open(tmp_path / "home") as reg:
        reg.publish("tab", {"model.onnx": two_feature_model()})
        with pytest.raises(InvalidArgument):
            evaluate(reg, "tab", str(tmp_path / "e.csv"), task="regression", latency=False)
        assert reg.explain_background("tab") is None  # rows that do not fit are never stored
        evaluate(reg, "tab", str(tmp_path / "d.csv"), task="regression", latency=False)
        stored = reg.explain_background("tab")
        assert stored is not None and stored.rows == 30 and stored.source.startswith("eval:")
        np.testing.assert_allclose(np.sort(stored.arrays["x"], axis=0), np.sort(x, axis=0))
