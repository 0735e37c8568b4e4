"""Resumable uploads (tus 1.0.0) through a real server: a PATCH cut mid-body by a raw socket, resumed with
HEAD + PATCH, imports a model that answers as onnxruntime does; a server restart between pieces; the offset
conflict; gc while an upload is in progress and after it expired; the SDK resuming through a proxy that
breaks its connection; a background import; and hostile requests, all answered with 4xx JSON."""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest

from maas import Client
from maas.config import Settings
from maas.registry import Registry
from maas.testing.live_server import LiveServer, live_server

from ..models import LINEAR_X, linear_model, linear_reference
from .test_jobs_live import wait_done

TUS = {"Tus-Resumable": "1.0.0"}
PIECE = {**TUS, "Content-Type": "application/offset+octet-stream"}
MODEL = linear_model()
MAX_UPLOAD = 64 * 1024


def md(**fields: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in fields.items())


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("resumable-home")


def settings_for(home: Path) -> Settings:
    return Settings(home=home, max_upload_bytes=MAX_UPLOAD)


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[LiveServer]:
    with live_server(settings_for(home)) as srv:
        yield srv


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.http_url, timeout=60) as c:
        yield c


def create(http: httpx.Client, length: int = len(MODEL), **meta: str) -> str:
    r = http.post("/api/v1/uploads", headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": md(**meta)})
    assert r.status_code == 201, r.text
    assert r.headers["upload-offset"] == "0" and r.headers["tus-resumable"] == "1.0.0"
    return r.headers["location"]


def offset_of(http: httpx.Client, url: str) -> int:
    r = http.head(url, headers=TUS)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    return int(r.headers["upload-offset"])


def wait_offset(http: httpx.Client, url: str, above: int) -> int:
    """The server stores a cut piece once it hears the disconnect, a moment after the socket closes."""
    deadline = time.monotonic() + 30
    while (at := offset_of(http, url)) <= above and time.monotonic() < deadline:
        time.sleep(0.05)
    return at


def infer(http: httpx.Client, name: str) -> list[list[float]]:
    body = {"inputs": [{"name": "x", "shape": list(LINEAR_X.shape), "datatype": "FP32",
                        "data": LINEAR_X.ravel().tolist()}]}
    r = http.post(f"/v2/models/{name}/infer", json=body)
    assert r.status_code == 200, r.text
    y = next(o for o in r.json()["outputs"] if o["name"] == "y")
    return np.asarray(y["data"], dtype=np.float32).reshape(y["shape"])  # type: ignore[no-any-return]


def raw_cut_patch(server: LiveServer, url: str, at: int, body: bytes, send: int) -> None:
    """A PATCH that declares all of `body` but sends only `send` bytes of it, then closes the socket."""
    head = (f"PATCH {url} HTTP/1.1\r\nHost: {server.http_target}\r\nTus-Resumable: 1.0.0\r\n"
            f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: {at}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.http_port)) as s:
        s.sendall(head + body[:send])
        time.sleep(0.2)  # let the server read what was sent before the connection breaks
        s.shutdown(socket.SHUT_RDWR)


def test_discovery(http: httpx.Client) -> None:
    r = http.options("/api/v1/uploads")
    assert r.status_code == 204
    assert r.headers["tus-version"] == "1.0.0" and r.headers["tus-max-size"] == str(MAX_UPLOAD)
    assert set(r.headers["tus-extension"].split(",")) >= {"creation", "termination", "expiration"}


def test_a_cut_patch_resumes_with_head_and_imports_a_working_model(server: LiveServer, http: httpx.Client) -> None:
    url = create(http, name="cut", filename="linear.onnx")
    raw_cut_patch(server, url, 0, MODEL, send=100)
    at = wait_offset(http, url, 0)
    assert at == 100  # the bytes that arrived before the break were kept
    r = http.patch(url, headers={**PIECE, "Upload-Offset": str(at)}, content=MODEL[at:])
    assert r.status_code == 204 and r.headers["upload-offset"] == str(len(MODEL))
    assert "upload-expires" in r.headers
    r = http.post(f"{url}/import", json={})
    assert r.status_code == 201, r.text
    assert r.json()["model"] == "cut" and r.json()["version"] == 1
    np.testing.assert_allclose(infer(http, "cut"), linear_reference(LINEAR_X)[0], rtol=1e-6)
    assert http.head(url, headers=TUS).status_code == 404  # imported: the upload is gone


def test_the_offset_conflict(http: httpx.Client) -> None:
    url = create(http, name="conflict")
    assert http.patch(url, headers={**PIECE, "Upload-Offset": "0"}, content=MODEL[:50]).status_code == 204
    r = http.patch(url, headers={**PIECE, "Upload-Offset": "0"}, content=MODEL[:50])
    assert r.status_code == 409 and "offset 50" in r.json()["error"]
    assert offset_of(http, url) == 50
    assert http.post(f"{url}/import", json={}).status_code == 409  # not complete yet
    assert http.delete(url, headers=TUS).status_code == 204
    assert http.head(url, headers=TUS).status_code == 404


def test_a_restart_between_pieces(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "home")
    with live_server(settings) as first, httpx.Client(base_url=first.http_url) as http:
        url = create(http, name="restarted", filename="m.onnx")
        assert http.patch(url, headers={**PIECE, "Upload-Offset": "0"}, content=MODEL[:120]).status_code == 204
    with live_server(settings) as second, httpx.Client(base_url=second.http_url) as http:
        assert offset_of(http, url) == 120
        assert http.patch(url, headers={**PIECE, "Upload-Offset": "120"}, content=MODEL[120:]).status_code == 204
        r = http.post(f"{url}/import", json={"background": True})
        assert r.status_code == 202, r.text
        job = wait_done(http, r.json()["id"])
        assert job["state"] == "succeeded", job
        np.testing.assert_allclose(infer(http, "restarted"), linear_reference(LINEAR_X)[0], rtol=1e-6)


def test_gc_keeps_an_upload_in_progress_and_collects_it_once_expired(home: Path, http: httpx.Client) -> None:
    url = create(http, name="gc-kept", filename="m.onnx")
    assert http.patch(url, headers={**PIECE, "Upload-Offset": "0"}, content=MODEL[:90]).status_code == 204
    with Registry(settings_for(home)) as reg:  # `maas gc` in another process, with no grace at all
        assert reg.gc(grace=timedelta(0)).removed_uploads == 0
    assert http.patch(url, headers={**PIECE, "Upload-Offset": "90"}, content=MODEL[90:]).status_code == 204
    assert http.post(f"{url}/import", json={}).status_code == 201

    abandoned = create(http, name="gc-expired")
    assert http.patch(abandoned, headers={**PIECE, "Upload-Offset": "0"}, content=b"abandoned piece").status_code == 204
    with Registry(settings_for(home).model_copy(update={"upload_expiry_s": 1e-3})) as reg:
        time.sleep(0.01)
        report = reg.gc(grace=timedelta(0))
    assert report.removed_uploads == 1 and report.removed_blobs >= 1
    assert http.head(abandoned, headers=TUS).status_code == 404


class CuttingProxy:
    """Forwards TCP to the server, and breaks the first connection that carries a PATCH after `after`
    bytes of its body, recording every PATCH's Upload-Offset."""

    def __init__(self, port: int, after: int) -> None:
        self.port, self.after = port, after
        self.cut = False
        self.offsets: list[str] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.port))
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
            threading.Thread(target=self._upstream, args=(client, upstream), daemon=True).start()

    def _upstream(self, client: socket.socket, upstream: socket.socket) -> None:
        seen = b""
        try:
            while data := client.recv(65536):
                seen += data
                for line in data.split(b"\r\n"):
                    if line.lower().startswith(b"upload-offset:") and b"PATCH" in seen:
                        self.offsets.append(line.split(b":", 1)[1].strip().decode())
                start = seen.find(b"PATCH ")
                end = seen.find(b"\r\n\r\n", start) if start >= 0 else -1
                if not self.cut and end >= 0:
                    keep = end + 4 + self.after - (len(seen) - len(data))
                    if len(seen) - end - 4 >= self.after:
                        self.cut = True
                        upstream.sendall(data[:max(keep, 0)])
                        time.sleep(0.2)
                        break
                upstream.sendall(data)
        except OSError:
            pass
        for s in (client, upstream):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self.listener.close()


def test_the_sdk_resumes_after_its_connection_breaks(server: LiveServer, http: httpx.Client, tmp_path: Path) -> None:
    path = tmp_path / "linear.onnx"
    path.write_bytes(MODEL)
    proxy = CuttingProxy(server.http_port, after=100)
    try:
        with Client(proxy.url) as client:
            version = client.import_file(path, name="sdk-resumed", resumable=True, description="resumed",
                                         tags={"team": "ml", "run": "7"}, aliases=["prod", "canary"])
    finally:
        proxy.close()
    assert proxy.cut and proxy.offsets[0] == "0" and "100" in proxy.offsets  # it resumed, not restarted
    assert version.ref == "sdk-resumed:1"
    assert version.description == "resumed" and version.tags == {"team": "ml", "run": "7"}
    assert sorted(version.aliases) == ["canary", "prod"]  # the import's options travel as the upload's metadata
    np.testing.assert_allclose(infer(http, "sdk-resumed"), linear_reference(LINEAR_X)[0], rtol=1e-6)


def test_the_sdk_background_import(server: LiveServer, http: httpx.Client, tmp_path: Path) -> None:
    path = tmp_path / "linear.onnx"
    path.write_bytes(MODEL)
    with Client(server.http_url) as client:
        job = client.upload_resumable(path, name="sdk-bg", fields={"description": "via tus", "tag": "a=1\nb=2"},
                                      background=True, chunk_bytes=64)
    done = wait_done(http, job["id"])
    assert done["state"] == "succeeded", done
    v = http.get("/api/v1/versions/sdk-bg:1").json()
    assert v["description"] == "via tus" and v["tags"] == {"a": "1", "b": "2"}


@pytest.mark.parametrize(("headers", "status", "says"), [
    ({"X-Requested-With": "t", "Upload-Length": "10"}, 412, "Tus-Resumable"),
    ({"Tus-Resumable": "0.2.2", "Upload-Length": "10"}, 412, "1.0.0"),
    (TUS, 400, "Upload-Length is required"),
    ({**TUS, "Upload-Length": "ten"}, 400, "non-negative integer"),
    ({**TUS, "Upload-Length": "-1"}, 400, "non-negative integer"),
    ({**TUS, "Upload-Length": "9" * 40}, 400, "non-negative integer"),
    ({**TUS, "Upload-Length": str(MAX_UPLOAD + 1)}, 413, "MAAS_MAX_UPLOAD_BYTES"),
    ({**TUS, "Upload-Defer-Length": "1"}, 400, "Upload-Defer-Length"),
    ({**TUS, "Upload-Length": "10", "Upload-Metadata": "name !!!"}, 400, "base64"),
    ({**TUS, "Upload-Length": "10", "Upload-Metadata": "a YQ==,a YQ=="}, 400, "repeats"),
    ({**TUS, "Upload-Length": "10", "Upload-Metadata": "a b c"}, 400, "pairs"),
    ({**TUS, "Upload-Length": "10", "Upload-Metadata": md(name="../etc")}, 400, "name"),
    ({**TUS, "Upload-Length": "10", "Upload-Metadata": md(name="m", labels="[1,")}, 400, "labels"),
    ({**TUS, "Upload-Length": "10", "Upload-Metadata": md(name="m", trust="yes")}, 403, "trust"),
    ({**TUS, "Upload-Length": "10", "Upload-Metadata": "name " + base64.b64encode(b"\xff").decode()}, 400, "UTF-8"),
    ({**TUS, "Upload-Length": "10", "Origin": "http://evil.example"}, 403, "cross-site"),
])
def test_hostile_creation(http: httpx.Client, headers: dict[str, str], status: int, says: str) -> None:
    r = http.post("/api/v1/uploads", headers=headers)
    assert r.status_code == status, r.text
    assert says in r.json()["error"]


def test_hostile_pieces(http: httpx.Client) -> None:
    url = create(http, length=10, name="hostile")
    unknown = "/api/v1/uploads/" + "0" * 32
    cases: list[tuple[str, str, dict[str, str], bytes, int]] = [
        ("PATCH", url, {**TUS, "Upload-Offset": "0", "Content-Type": "application/json"}, b"{}", 415),
        ("PATCH", url, {**PIECE}, b"abc", 400),
        ("PATCH", url, {**PIECE, "Upload-Offset": "x"}, b"abc", 400),
        ("PATCH", url, {**PIECE, "Upload-Offset": "3"}, b"abc", 409),
        ("PATCH", url, {"Content-Type": PIECE["Content-Type"], "Upload-Offset": "0"}, b"abc", 412),
        ("PATCH", url, {**PIECE, "Upload-Offset": "0"}, b"x" * 11, 413),
        ("PATCH", unknown, {**PIECE, "Upload-Offset": "0"}, b"abc", 404),
        ("PATCH", "/api/v1/uploads/not-an-id", {**PIECE, "Upload-Offset": "0"}, b"abc", 404),
        ("PATCH", "/api/v1/uploads/..%2F..%2Fetc%2Fpasswd", {**PIECE, "Upload-Offset": "0"}, b"abc", 404),
        ("DELETE", unknown, TUS, b"", 404),
        ("POST", unknown + "/import", {"X-Requested-With": "t"}, b"", 404),
        ("POST", url + "/import", {"Content-Type": "application/json"}, b"[1,", 400),
        ("POST", url + "/import", {"Content-Type": "application/json"}, b'{"name": {"x": 1}}', 400),
        ("POST", url + "/import", {"Content-Type": "application/json"}, b'{}', 409),
    ]
    for method, target, headers, body, status in cases:
        r = http.request(method, target, headers=headers, content=body)
        assert r.status_code == status, (method, target, headers, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/json") and r.json()["error"], r.text

    def too_long() -> Iterator[bytes]:  # chunked: no Content-Length to refuse up front
        yield b"x" * 6
        yield b"y" * 6

    r = http.patch(url, headers={**PIECE, "Upload-Offset": "0"}, content=too_long())
    assert r.status_code == 413 and "Upload-Length" in r.json()["error"]
    assert offset_of(http, url) == 0
    assert http.head("/api/v1/uploads/" + "f" * 32, headers=TUS).status_code == 404


def test_the_cli_imports_on_a_server(server: LiveServer, http: httpx.Client, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from maas.cli.main import app

    path = tmp_path / "linear.onnx"
    path.write_bytes(MODEL)
    result = CliRunner().invoke(app, ["import", str(path), "--name", "cli-remote", "--tag", "via=cli",
                                      "--server", server.http_url])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("cli-remote:1")
    assert http.get("/api/v1/versions/cli-remote:1").json()["tags"] == {"via": "cli"}
    np.testing.assert_allclose(infer(http, "cli-remote"), linear_reference(LINEAR_X)[0], rtol=1e-6)
    refused = CliRunner().invoke(app, ["import", str(tmp_path), "--name", "x", "--server", server.http_url])
    assert refused.exit_code != 0 and "not a file" in refused.output


def test_the_docs_curl_walk_through(server: LiveServer, http: httpx.Client, tmp_path: Path) -> None:
    import os
    import re
    import subprocess

    doc = (Path(__file__).resolve().parents[3] / "docs" / "uploads.md").read_text()
    script = re.search(r"```sh\n(.*?)```", doc, re.S)
    assert script is not None
    (tmp_path / "model.onnx").write_bytes(MODEL)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script.group(1)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "MAAS": server.http_url})
    assert done.returncode == 0, done.stderr
    assert '"model":"digits-up"' in done.stdout.replace(" ", "")
    np.testing.assert_allclose(infer(http, "digits-up"), linear_reference(LINEAR_X)[0], rtol=1e-6)


def test_scopes_owners_and_model_patterns(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "keyed")
    with Registry(settings) as reg:
        keys = reg.key_store()
        read = keys.create("reader", "read")[1]
        alice = keys.create("alice", "write")[1]
        bob = keys.create("bob", "write", models=["bob-*"])[1]
    with live_server(settings) as srv, httpx.Client(base_url=srv.http_url) as http:
        def as_(token: str) -> dict[str, str]:
            return {**TUS, "Authorization": f"Bearer {token}"}

        assert http.post("/api/v1/uploads", headers={**TUS, "Upload-Length": "5"}).status_code == 401
        assert http.post("/api/v1/uploads", headers={**as_(read), "Upload-Length": "5"}).status_code == 403
        assert http.options("/api/v1/uploads", headers=as_(read)).status_code == 204
        r = http.post("/api/v1/uploads", headers={**as_(bob), "Upload-Length": "5", "Upload-Metadata": md(name="x")})
        assert r.status_code == 403 and "x" in r.json()["error"]  # bob's key does not cover model x
        r = http.post("/api/v1/uploads", headers={**as_(alice), "Upload-Length": "5", "Upload-Metadata": md(name="a")})
        url = r.headers["location"]
        assert http.head(url, headers=as_(bob)).status_code == 404  # alice's upload does not exist for bob
        assert http.patch(url, headers={**as_(bob), **PIECE, "Upload-Offset": "0"}, content=b"12345").status_code == 404
        assert http.head(url, headers=as_(alice)).status_code == 200


def test_one_writer_at_a_time_and_creation_with_upload(server: LiveServer, http: httpx.Client) -> None:
    r = http.post("/api/v1/uploads", headers={**PIECE, "Upload-Length": str(len(MODEL)),
                                              "Upload-Metadata": md(name="with-body", filename="m.onnx")},
                  content=MODEL[:60])
    assert r.status_code == 201 and r.headers["upload-offset"] == "60"
    url = r.headers["location"]
    head = (f"PATCH {url} HTTP/1.1\r\nHost: {server.http_target}\r\nTus-Resumable: 1.0.0\r\n"
            f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: 60\r\n"
            f"Content-Length: {len(MODEL) - 60}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.http_port)) as slow:
        slow.sendall(head + MODEL[60:100])  # a writer that stalls mid-body, holding the upload
        deadline = time.monotonic() + 30  # until the stalled writer holds it (an empty piece changes nothing)
        while http.patch(url, headers={**PIECE, "Upload-Offset": "60"}, content=b"").status_code == 204 \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        r = http.patch(url, headers={**PIECE, "Upload-Offset": "60"}, content=MODEL[60:])
        assert r.status_code == 423 and r.headers["retry-after"] == "1", r.text
        slow.shutdown(socket.SHUT_RDWR)
    at = wait_offset(http, url, 60)
    assert at == 100
    assert http.patch(url, headers={**PIECE, "Upload-Offset": "100"}, content=MODEL[100:]).status_code == 204
    assert http.post(f"{url}/import", json={}).status_code == 201
