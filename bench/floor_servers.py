"""Servers that do no work, on the same stacks as `maas serve`, so the benchmark can show what the transport
alone costs on this machine: the most any server built on it could answer.

    python bench/floor_servers.py http PORT   # uvicorn + uvloop + httptools; reads the body, answers 100 bytes
    python bench/floor_servers.py grpc PORT   # grpc.aio on uvloop; ModelInfer answers a fixed response
"""

from __future__ import annotations

import sys
from typing import Any

ANSWER = b'{"model_name":"floor","model_version":"1","outputs":[]}'


async def http_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:  # read the whole body, as the infer route does
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]})
    await send({"type": "http.response.body", "body": ANSWER})


def serve_http(port: int) -> None:
    import uvicorn

    uvicorn.run(http_app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", log_level="warning",
                access_log=False)


def serve_grpc(port: int) -> None:
    import grpc
    import uvloop

    async def infer(request: bytes, context: Any) -> bytes:
        return ANSWER

    async def main() -> None:
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", -1)])
        handler = grpc.method_handlers_generic_handler(
            "inference.GRPCInferenceService", {"ModelInfer": grpc.unary_unary_rpc_method_handler(infer)})
        server.add_generic_rpc_handlers((handler,))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    uvloop.run(main())


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    serve_http(port) if kind == "http" else serve_grpc(port)
