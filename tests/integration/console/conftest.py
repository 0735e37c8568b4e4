"""One `maas serve` (a subprocess on free ports, stopped by its pid) and one Chromium shared by every console
test. Chromium is Debian's (`apt-get install chromium`); playwright's own browser download is never used."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from .fixtures import Tokens, prepare_home

CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    """`maas serve` on a maas home as a subprocess on a loopback port, stopped by its pid."""

    def __init__(self, home: Path, port: int | None = None, log_name: str = "serve.log",
                 models: tuple[str, ...] = ()) -> None:
        self.home = home
        self.models = models  # serve only these (a quicker start), else every model of the home
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / log_name
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        env = {**os.environ, "MAAS_HOME": str(self.home), "PYTHONPATH": os.pathsep.join(sys.path)}
        env.pop("MAAS_API_KEY", None)
        with self.log_path.open("a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "maas.cli", "serve", "--http-port", str(self.port),
                 "--grpc-port", str(free_port()), *(a for m in self.models for a in ("--models", m))],
                env=env, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + 120
        while True:
            assert self.proc.poll() is None, self.log_path.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "maas serve never became ready"
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@dataclass
class ConsoleServer:
    url: str
    home: Path
    tokens: Tokens
    screenshots: Path
    process: ServeProcess

    def restart_beside(self, other: ServeProcess) -> None:
        """Stop this server and start it again on the same port and home while `other` starts on the same
        home too (both starts overlap, to keep the test short)."""
        other.launch()
        self.process.stop()
        self.process.launch()
        other.wait_ready()
        self.process.wait_ready()


@pytest.fixture(scope="package")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    home = tmp_path_factory.mktemp("console-home")
    tokens = prepare_home(home)
    process = ServeProcess(home)
    try:
        process.start()
        shots = Path(os.environ.get("MAAS_CONSOLE_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
        shots.mkdir(parents=True, exist_ok=True)
        yield ConsoleServer(process.url, home, tokens, shots, process)
    finally:
        process.stop()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


class Session:
    """A signed-in browser context: `page` plus the JavaScript errors it raised."""

    def __init__(self, browser: Any, server: ConsoleServer, token: str) -> None:
        self.server = server
        self.context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.goto("/console/")
        assert "/console/login" in self.page.url  # a keyed server asks for a key first
        self.page.fill("input[name=token]", token)
        self.page.click("#sign-in button[type=submit]")
        self.page.wait_for_url(lambda url: "/console/login" not in url)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.server.screenshots / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="package")
def admin(browser: Any, console_server: ConsoleServer) -> Iterator[Session]:
    session = Session(browser, console_server, console_server.tokens.admin)
    yield session
    session.close()


@pytest.fixture(scope="package")
def reader(browser: Any, console_server: ConsoleServer) -> Iterator[Session]:
    session = Session(browser, console_server, console_server.tokens.read)
    yield session
    session.close()
