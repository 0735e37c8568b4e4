"""Overload refusals come from maas on both transports: a JSON (or gRPC status) message, the request id and
an access-log line — never uvicorn's plain 503 nor a gRPC CANCELLED from grpc's own limits."""

from __future__ import annotations

import asyncio
import json
import logging
import socket

import pytest

from .conftest import make_settings, serving

BODY = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}).encode()


@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    # One HTTP request in flight at a time, and a queue that admits nothing expected to wait at all.
    settings = make_settings(tmp_path_factory.mktemp("tight"), max_http_in_flight=1, max_queue_wait_ms=0.001)
    with serving(settings) as endpoints:
        yield endpoints


@pytest.fixture(scope="module")
def one_in_flight(tmp_path_factory):
    # One HTTP request in flight at a time, the default queue bound: a request is refused for the cap alone, not
    # for the time it waited unread (which `tight`'s 1 us bound refuses on a loaded machine).
    with serving(make_settings(tmp_path_factory.mktemp("one"), max_http_in_flight=1)) as endpoints:
        yield endpoints


def access_lines(caplog, rid):
    return [r.getMessage() for r in caplog.records if r.name == "maas.access" and f"request_id={rid} " in
            r.getMessage()]


def test_http_in_flight_cap_is_a_maas_429(one_in_flight, caplog) -> None:
    import httpx

    caplog.set_level(logging.INFO, logger="maas.access")
    host, port = one_in_flight.http.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as held:
        # A request whose body never finishes keeps its ASGI task, and so the one in-flight slot, busy.
        held.sendall(f"POST /v2/models/linear/infer HTTP/1.1\r\nHost: x\r\nContent-Length: {len(BODY)}\r\n\r\n"
                     .encode() + BODY[:5])
        with httpx.Client(base_url=one_in_flight.base_url, timeout=10) as http:
            for _ in range(100):
                resp = http.post("/v2/models/linear/infer", content=BODY, headers={"X-Request-ID": "busy-1"})
                if resp.status_code == 429:
                    break
            assert resp.status_code == 429, resp.text
            assert resp.headers["content-type"] == "application/json" and "busy" in resp.json()["error"]
            assert resp.headers["x-request-id"] == "busy-1"
    assert any("status=429" in line for line in access_lines(caplog, "busy-1"))


def test_queue_wait_refusals_on_both_transports(tight, caplog) -> None:
    import grpc
    import httpx

    from maas.protocol.grpc_gen import inference_pb2 as pb

    caplog.set_level(logging.INFO, logger="maas.access")

    async def grpc_burst() -> list[grpc.StatusCode]:
        async with grpc.aio.insecure_channel(tight.grpc) as channel:
            call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                       request_serializer=pb.ModelInferRequest.SerializeToString,
                                       response_deserializer=pb.ModelInferResponse.FromString)

            async def one(i: int) -> grpc.StatusCode:
                req = pb.ModelInferRequest(model_name="linear")
                req.inputs.add(name="x", datatype="FP32", shape=[1, 4]).contents.fp32_contents.extend([1, 2, 3, 4])
                try:
                    await call(req, metadata=(("x-request-id", f"burst-{i}"),), timeout=30)
                    return grpc.StatusCode.OK
                except grpc.aio.AioRpcError as err:
                    assert err.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or "overloaded" in err.details()
                    return err.code()

            return list(await asyncio.gather(*(one(i) for i in range(200))))

    codes = asyncio.run(grpc_burst())
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, set(codes)
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes and grpc.StatusCode.OK in codes
    shed = [i for i, c in enumerate(codes) if c == grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert any("outcome=resource_exhausted" in line for line in access_lines(caplog, f"burst-{shed[0]}"))

    async def http_burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=tight.base_url, timeout=30,
                                     limits=httpx.Limits(max_connections=1)) as http:
            # One connection: requests pipeline one at a time, so the in-flight cap (1) is never the refusal.
            return list(await asyncio.gather(*(http.post("/v2/models/linear/infer", content=BODY)
                                               for _ in range(50))))

    statuses = {r.status_code for r in asyncio.run(http_burst())}
    assert statuses <= {200, 429}, statuses


@pytest.fixture(scope="module")
def impatient(tmp_path_factory):
    # A queue that admits nothing expected to wait at all, with the default in-flight caps.
    with serving(make_settings(tmp_path_factory.mktemp("impatient"), max_queue_wait_ms=0.001)) as endpoints:
        yield endpoints


def test_rest_queue_wait_refusals_are_maas_json(impatient, caplog) -> None:
    import httpx

    caplog.set_level(logging.INFO, logger="maas.access")

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=impatient.base_url, timeout=30,
                                     limits=httpx.Limits(max_connections=64)) as http:
            return list(await asyncio.gather(*(
                http.post("/v2/models/linear/infer", content=BODY, headers={"X-Request-ID": f"rest-{i}"})
                for i in range(300))))

    responses = asyncio.run(burst())
    assert {r.status_code for r in responses} <= {200, 429}
    shed = [r for r in responses if r.status_code == 429]
    assert shed and any(r.status_code == 200 for r in responses)
    for r in shed[:5]:
        assert r.headers["content-type"] == "application/json" and "overloaded" in r.json()["error"]
        assert any("status=429" in line for line in access_lines(caplog, r.headers["x-request-id"]))
