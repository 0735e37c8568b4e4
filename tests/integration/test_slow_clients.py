"""Idle and slow-loris connections must not stop other clients from being served."""

import json
import socket

import httpx

BODY = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}).encode()


def test_slow_clients_do_not_block_others(server):
    host, port = server.http.split(":")
    held = []
    try:
        for _ in range(4):  # connected, silent
            held.append(socket.create_connection((host, int(port)), timeout=10))
        for _ in range(4):  # headers trickling in, never finished
            s = socket.create_connection((host, int(port)), timeout=10)
            s.sendall(b"POST /v2/models/linear/infer HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            held.append(s)
        for _ in range(4):  # complete headers, a body that stops half-way
            s = socket.create_connection((host, int(port)), timeout=10)
            s.sendall(
                b"POST /v2/models/linear/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(BODY)}\r\n\r\n".encode() + BODY[: len(BODY) // 2]
            )
            held.append(s)
        # A generous hang guard, not a latency assertion: the request must be served while those wait.
        with httpx.Client(base_url=server.base_url, timeout=20) as client:
            for _ in range(3):
                resp = client.post("/v2/models/linear/infer", content=BODY)
                assert resp.status_code == 200
                assert resp.json()["model_name"] == "linear"
            assert client.get("/v2/health/ready").status_code == 200
    finally:
        for s in held:
            s.close()
