"""The data plane end to end on real onnxruntime sessions: batching correctness, validation, extensions."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from maas.errors import InvalidArgument, MaasError, NotFound, Unavailable
from maas.protocol.model_config import triton_config
from maas.registry import Registry
from maas.serving import ServingDataPlane, ServingOptions
from maas.serving.contract import InferenceRequest, InferTensor, ModelConfig, RequestedOutput

from . import serving_models as models
from .serving_models import serve


def tensor(name: str, data: np.ndarray, datatype: str = "FP32") -> InferTensor:
    return InferTensor(name, datatype, tuple(data.shape), data)




def test_concurrent_callers_each_get_exactly_their_rows(serving_registry: Registry) -> None:
    models.publish(serving_registry, "linear", models.linear(), config={"max_batch_size": 8})
    rng = np.random.default_rng(7)
    inputs = [rng.standard_normal((int(rng.integers(1, 4)), 4)).astype(np.float32) for _ in range(40)]

    async def body(plane: ServingDataPlane) -> None:
        requests = [InferenceRequest("linear", None, [tensor("x", x)], protocol="test") for x in inputs]
        responses = await asyncio.gather(*(plane.infer(r) for r in requests))
        for x, response in zip(inputs, responses, strict=True):
            (y,) = response.outputs
            assert y.name == "y" and y.datatype == "FP32" and y.shape == (x.shape[0], 3)
            np.testing.assert_allclose(y.data, models.linear_expected(x), rtol=1e-5, atol=1e-5)
        assert responses[0].model_version == "1"
        ok = plane.metrics.registry.get_sample_value(
            "maas_inference_requests_total",
            {"model": "linear", "version": "1", "protocol": "test", "outcome": "ok"},
        )
        assert ok == len(inputs)
        batches = plane.metrics.registry.get_sample_value(
            "maas_inference_batch_size_sum", {"model": "linear", "version": "1"}
        )
        assert batches == sum(x.shape[0] for x in inputs)

    serve(serving_registry, body)


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (InferenceRequest("nope", None, []), NotFound),
        (InferenceRequest("linear", "9", []), NotFound),
        (InferenceRequest("linear", None, [tensor("z", np.zeros((1, 4), np.float32))]), InvalidArgument),
        (InferenceRequest("linear", None, []), InvalidArgument),
        (
            InferenceRequest("linear", None, [tensor("x", np.zeros((1, 4), np.int32), "INT32")]),
            InvalidArgument,
        ),
        (InferenceRequest("linear", None, [tensor("x", np.zeros((1, 5), np.float32))]), InvalidArgument),
        (InferenceRequest("linear", None, [tensor("x", np.zeros((9, 4), np.float32))]), InvalidArgument),
        (
            InferenceRequest("linear", None, [InferTensor("x", "FP32", (-1, 4), np.zeros(4, np.float32))]),
            InvalidArgument,
        ),
        (
            InferenceRequest(
                "linear", None, [InferTensor("x", "FP32", (1 << 40, 4), np.zeros(4, np.float32))]
            ),
            InvalidArgument,
        ),
        (
            InferenceRequest("linear", None, [InferTensor("x", "FP32", (2, 4), np.zeros(4, np.float32))]),
            InvalidArgument,
        ),
        (
            InferenceRequest(
                "linear", None, [tensor("x", np.zeros((1, 4), np.float32))], [RequestedOutput("q")]
            ),
            InvalidArgument,
        ),
        (
            InferenceRequest(
                "linear",
                None,
                [tensor("x", np.zeros((1, 4), np.float32))],
                [RequestedOutput("y", {"classification": -1})],
            ),
            InvalidArgument,
        ),
    ],
    ids=[
        "unknown-model",
        "unknown-version",
        "unknown-input",
        "missing-input",
        "datatype",
        "shape",
        "batch-too-big",
        "negative-dim",
        "absurd-shape",
        "data-does-not-fill-shape",
        "unknown-output",
        "bad-classification",
    ],
)
def test_invalid_requests_are_refused(
    serving_registry: Registry, request_: InferenceRequest, error: type[MaasError]
) -> None:
    models.publish(serving_registry, "linear", models.linear(), config={"max_batch_size": 8})

    async def body(plane: ServingDataPlane) -> None:
        with pytest.raises(error):
            await plane.infer(request_)
        outcome = error.code.value.lower()
        total = sum(
            s.value
            for m in plane.metrics.registry.collect()
            for s in m.samples
            if s.name == "maas_inference_requests_total" and s.labels["outcome"] == outcome
        )
        assert total == 1

    serve(serving_registry, body)


def test_png_bytes_come_back_as_top_classes_with_labels(serving_registry: Registry) -> None:
    models.publish(serving_registry, "digits", models.digits(), config=models.DIGITS_CONFIG)
    images = np.array([models.png(255), models.png(0, size=(20, 12))], dtype=object)

    async def body(plane: ServingDataPlane) -> None:
        meta = await plane.model_metadata("digits")
        assert [(s.name, s.datatype, s.shape) for s in meta.inputs] == [("x", "FP32", (-1, 1, 8, 8))]
        assert [(s.name, s.datatype, s.shape) for s in meta.encoded_inputs] == [("x", "BYTES", (-1,))]
        response = await plane.infer(
            InferenceRequest(
                "digits",
                None,
                [tensor("x", images, "BYTES")],
                [RequestedOutput("labels"), RequestedOutput("topk_indices"), RequestedOutput("topk_scores")],
            )
        )
        out = {t.name: t for t in response.outputs}
        assert out["labels"].datatype == "BYTES" and out["labels"].shape == (2, 3)
        assert out["labels"].data.tolist() == [[b"nine", b"eight", b"seven"], [b"zero", b"one", b"two"]]
        assert out["topk_indices"].data.tolist() == [[9, 8, 7], [0, 1, 2]]
        scores = out["topk_scores"].data
        assert scores.dtype == np.float32 and np.all(np.diff(scores, axis=1) <= 0) and np.all(scores <= 1)

    serve(serving_registry, body)


def test_an_image_model_also_takes_its_own_tensor(serving_registry: Registry) -> None:
    models.publish(serving_registry, "digits", models.digits(), config=models.DIGITS_CONFIG)
    bright = np.ones((1, 1, 8, 8), dtype=np.float32)

    async def body(plane: ServingDataPlane) -> None:
        response = await plane.infer(
            InferenceRequest("digits", None, [tensor("x", bright, "FP32")], [RequestedOutput("labels")])
        )
        assert response.outputs[0].data.tolist() == [[b"nine", b"eight", b"seven"]]
        with pytest.raises(InvalidArgument, match="shape"):
            await plane.infer(InferenceRequest("digits", None, [tensor("x", np.ones((1, 8, 8), np.float32), "FP32")]))

    serve(serving_registry, body)


def test_images_over_the_pixel_cap_are_refused(serving_registry: Registry) -> None:
    models.publish(serving_registry, "digits", models.digits(), config=models.DIGITS_CONFIG)

    async def body(plane: ServingDataPlane) -> None:
        big = np.array([models.png(10, size=(64, 64))], dtype=object)
        with pytest.raises(InvalidArgument, match="exceeds"):
            await plane.infer(InferenceRequest("digits", None, [tensor("x", big, "BYTES")]))
        junk = np.array([b"not an image"], dtype=object)
        with pytest.raises(InvalidArgument, match="decode"):
            await plane.infer(InferenceRequest("digits", None, [tensor("x", junk, "BYTES")]))

    serve(serving_registry, body, max_image_pixels=32 * 32)


def test_classification_extension_returns_top_k_strings_per_row(serving_registry: Registry) -> None:
    labels = ["cat", "dog", "eel"]
    models.publish(
        serving_registry, "linear", models.linear(), config={"max_batch_size": 4, "labels": labels}
    )
    x = np.array([[1, 0, 0, 0], [0, 0, 0, -3]], dtype=np.float32)
    expected = models.linear_expected(x)

    async def body(plane: ServingDataPlane) -> None:
        response = await plane.infer(
            InferenceRequest("linear", None, [tensor("x", x)], [RequestedOutput("y", {"classification": 2})])
        )
        (y,) = response.outputs
        assert y.datatype == "BYTES" and y.shape == (2, 2)
        for row, got in zip(expected, y.data, strict=True):
            order = np.argsort(-row)[:2]
            want = [f"{row[i]:f}:{i}:{labels[i]}".encode() for i in order]
            assert got.tolist() == want

    serve(serving_registry, body)


def test_model_config_is_the_cores_own_and_renders_as_tritons(serving_registry: Registry) -> None:
    config = {"max_batch_size": 8, "batching": {"max_queue_delay_us": 300, "preferred_batch_sizes": [4, 8]}}
    models.publish(serving_registry, "linear", models.linear(), config=config)

    async def body(plane: ServingDataPlane) -> ModelConfig:
        return await plane.model_config("linear")

    cfg = serve(serving_registry, body)
    assert isinstance(cfg, ModelConfig) and "TYPE_" not in repr(cfg)  # the core speaks no wire format
    assert (cfg.max_batch_size, cfg.instances, cfg.inputs[0].shape) == (8, 1, (-1, 4))
    got = triton_config(cfg)
    assert (
        got["name"] == "linear" and got["platform"] == "onnxruntime_onnx" and got["backend"] == "onnxruntime"
    )
    assert got["max_batch_size"] == 8
    assert got["input"] == [{"name": "x", "data_type": "TYPE_FP32", "format": "FORMAT_NONE", "dims": [4]}]
    assert got["output"] == [{"name": "y", "data_type": "TYPE_FP32", "dims": [3]}]
    assert got["dynamic_batching"] == {"preferred_batch_size": [4, 8], "max_queue_delay_microseconds": 300}
    assert got["instance_group"][0]["count"] == 1


def test_per_model_overrides_win_over_the_version_config(serving_registry: Registry) -> None:
    from maas.serving import ModelOverrides

    models.publish(serving_registry, "linear", models.linear(), config={"max_batch_size": 8})

    async def body(plane: ServingDataPlane) -> ModelConfig:
        return await plane.model_config("linear")

    got = serve(serving_registry, body, overrides={"linear": ModelOverrides(max_batch_size=2, instances=2)})
    assert got.max_batch_size == 2 and got.instances == 2


def test_server_metadata_and_health(serving_registry: Registry) -> None:
    models.publish(serving_registry, "linear", models.linear())

    async def body(plane: ServingDataPlane) -> None:
        assert plane.live() and plane.ready()
        meta = plane.server_metadata()
        assert meta.name == "maas"
        assert {"classification", "model_repository", "model_configuration", "binary_tensor_data"} <= set(
            meta.extensions
        )
        assert await plane.model_ready("linear")
        with pytest.raises(NotFound):
            await plane.model_ready("nope")

    serve(serving_registry, body)


def test_after_stop_requests_are_refused(serving_registry: Registry) -> None:
    models.publish(serving_registry, "linear", models.linear())

    async def main() -> None:
        plane = ServingDataPlane(serving_registry, ServingOptions(inference_threads=1))
        await plane.start()
        await plane.stop(5.0)
        assert not plane.ready() and not plane.live()
        with pytest.raises(Unavailable):
            await plane.infer(InferenceRequest("linear", None, [tensor("x", np.zeros((1, 4), np.float32))]))

    asyncio.run(main())
