"""Overload refusals decided from a request's headers alone (`http_limits.limited_protocol(early=...)`,
`Edge.shed_early`): answered from the protocol with maas's JSON 429, its request id and an access-log line,
with no ASGI task, the body dropped as it arrives and the connection kept for the next request."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from types import SimpleNamespace

import pytest
import uvicorn
from uvicorn.server import ServerState

from maas.server.edge import Edge
from maas.server.http_limits import limited_protocol
from maas.server.infer_route import INFER_PATH

BODY = b'{"inputs": []}'


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _app(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _connection(early, max_in_flight: int = 100, per_pass: int = 32):
    config = uvicorn.Config(_app, proxy_headers=False, log_level="warning")
    config.load()
    state = ServerState()
    cls = limited_protocol(64 * 1024, 100, max_in_flight, early, per_pass)
    protocol = cls(config=config, server_state=state, app_state={}, _loop=asyncio.get_running_loop())
    transport = Transport()
    protocol.connection_made(transport)
    return protocol, transport, state


def _request(path: str, body: bytes = BODY, *extra: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: x", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _responses(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    out = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        size = int(headers["content-length"])
        out.append((int(lines[0].split()[1]), headers, rest[:size]))
        raw = rest[size:]
    return out


def _shed_model_m(method: str, path: str, headers: list[tuple[bytes, bytes]],
                  unread_s: float) -> tuple[str, str, str] | None:
    return ("m", "", "m:1: overloaded; retry later") if path == "/v2/models/m/infer" else None


def test_a_shed_request_is_answered_without_a_task_and_the_connection_serves_the_next(caplog) -> None:
    caplog.set_level(logging.INFO, logger="maas.access")

    async def exchange() -> tuple[Transport, int]:
        protocol, transport, state = _connection(_shed_model_m)
        # The body arrives after the answer, in pieces: it is dropped, and the next request is parsed normally.
        protocol.data_received(_request("/v2/models/m/infer", BODY, "X-Request-ID: shed-1")[:-5])
        tasks_after_refusal = len(state.tasks)
        protocol.data_received(BODY[-5:] + _request("/v2/models/other/infer"))
        await asyncio.gather(*state.tasks)
        return transport, tasks_after_refusal

    transport, tasks_after_refusal = asyncio.run(exchange())
    assert tasks_after_refusal == 0
    (status, headers, body), (next_status, _, next_body) = _responses(bytes(transport.written))
    assert status == 429 and headers["x-request-id"] == "shed-1"
    assert headers["content-type"] == "application/json" and "connection" not in headers
    assert json.loads(body) == {"error": "m:1: overloaded; retry later"}
    assert (next_status, next_body) == (200, b"ok") and not transport.closed
    lines = [r.getMessage() for r in caplog.records if r.name == "maas.access"]
    assert len(lines) == 1 and re.search(r"request_id=shed-1 .*model=m .*outcome=resource_exhausted status=429",
                                         lines[0])


def test_a_shed_request_that_expects_100_continue_closes_its_connection() -> None:
    async def exchange() -> tuple[Transport, ServerState]:
        protocol, transport, state = _connection(_shed_model_m)
        head = _request("/v2/models/m/infer", BODY, "Expect: 100-continue")
        protocol.data_received(head[: -len(BODY)])  # the client waits for a 100 before sending its body
        return transport, state

    transport, state = asyncio.run(exchange())
    (status, headers, _), = _responses(bytes(transport.written))
    assert status == 429 and headers["connection"] == "close" and transport.closed and not state.tasks


def test_the_in_flight_cap_answers_from_the_protocol_too() -> None:
    async def exchange() -> tuple[Transport, ServerState]:
        protocol, transport, state = _connection(None, max_in_flight=1)
        state.tasks.add(asyncio.get_running_loop().create_future())  # type: ignore[arg-type]  # one in flight
        protocol.data_received(_request("/v2/models/m/infer"))
        return transport, state

    transport, state = asyncio.run(exchange())
    (status, headers, body), = _responses(bytes(transport.written))
    assert status == 429 and headers["retry-after"] == "1" and "busy" in json.loads(body)["error"]
    assert len(state.tasks) == 1


class _Infer:
    def __init__(self, why: str | None) -> None:
        self.why = why

    def match(self, scope):
        return INFER_PATH.fullmatch(scope["path"]) if scope["method"] == "POST" else None

    def shed(self, name: str, version: str | None, unread_s: float = 0.0) -> str | None:
        return self.why


def _edge(why: str | None = "overloaded", open_now: bool = True, limit: int = 1000) -> Edge:
    auth = SimpleNamespace(authorizer=SimpleNamespace(open_now=open_now))
    return Edge(_app, _Infer(why), auth, limit, limit)  # type: ignore[arg-type]


def test_shed_early_names_the_model_and_version_of_an_overloaded_infer_request() -> None:
    assert _edge().shed_early("POST", "/v2/models/m/versions/2/infer", []) == ("m", "2", "overloaded")
    assert _edge().shed_early("POST", "/v2/models/m/infer", [(b"content-length", b"10")]) == ("m", "", "overloaded")


@pytest.mark.parametrize(("edge", "method", "path", "headers"), [
    (_edge(why=None), "POST", "/v2/models/m/infer", []),  # not overloaded
    (_edge(open_now=False), "POST", "/v2/models/m/infer", []),  # keys: auth answers first
    (_edge(), "POST", "/v2/models/m/infer", [(b"cookie", b"maas_session=x")]),  # the console gate's way
    (_edge(limit=5), "POST", "/v2/models/m/infer", [(b"content-length", b"10")]),  # the 413 comes first
    (_edge(), "GET", "/v2/models/m/infer", []),
    (_edge(), "POST", "/v2/models/m/ready", []),
    (_edge(), "POST", "/v2/models/m\x00/infer", []),  # the path guard's 400
])
def test_shed_early_leaves_to_the_usual_way_what_something_else_answers_first(edge, method, path, headers) -> None:
    assert edge.shed_early(method, path, headers) is None


def test_unread_time_comes_from_the_kernel_for_a_tcp_socket_and_is_zero_without_one() -> None:
    import socket

    from maas.server.http_limits import unread_s

    with socket.create_server(("127.0.0.1", 0)) as server, socket.create_connection(server.getsockname()) as client:
        accepted, _ = server.accept()
        with accepted:
            client.sendall(b"POST / HTTP/1.1\r\n\r\n")
            accepted.recv(64)
            waited = unread_s(accepted)
            assert isinstance(waited, float) and waited >= 0.0
    assert unread_s(None) == 0.0
    assert unread_s(object()) == 0.0  # no getsockopt (a transport without a socket)


def test_shed_early_passes_the_unread_time_to_the_route() -> None:
    seen = []

    class Infer(_Infer):
        def shed(self, name: str, version: str | None, unread_s: float = 0.0) -> str | None:
            seen.append(unread_s)
            return None

    edge = Edge(_app, Infer(None), SimpleNamespace(authorizer=SimpleNamespace(open_now=True)), 10, 10)  # type: ignore[arg-type]
    assert edge.shed_early("POST", "/v2/models/m/infer", [], 0.25) is None and seen == [0.25]


def test_past_its_budget_a_pass_over_the_sockets_leaves_refusals_to_the_asgi_way() -> None:
    """Refusals answered in the protocol run while libuv reads sockets, before any ready callback: a budget per
    pass keeps a burst's refusals from starving the admitted requests' callbacks."""

    async def exchange() -> tuple[int, int, int]:
        first, _, state = _connection(_shed_model_m, per_pass=1)
        second, _, state2 = _connection(_shed_model_m, per_pass=1)  # another class: its own budget
        first.data_received(_request("/v2/models/m/infer"))
        first.data_received(_request("/v2/models/m/infer"))  # same pass, budget spent: a task
        in_pass = len(state.tasks)
        await asyncio.gather(*state.tasks)
        await asyncio.sleep(0)  # the loop ran its callbacks: the budget is back
        first.data_received(_request("/v2/models/m/infer"))
        second.data_received(_request("/v2/models/m/infer"))
        return in_pass, len(state.tasks), len(state2.tasks)

    in_pass, after_refill, other = asyncio.run(exchange())
    assert (in_pass, after_refill, other) == (1, 0, 0)
