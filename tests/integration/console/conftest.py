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


@dataclass
class ConsoleServer:
    url: str
    home: Path
    tokens: Tokens
    screenshots: Path


@pytest.fixture(scope="package")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    home = tmp_path_factory.mktemp("console-home")
    tokens = prepare_home(home)
    port = free_port()
    env = {**os.environ, "MAAS_HOME": str(home), "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("MAAS_API_KEY", None)
    log = (home / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "maas.cli", "serve", "--http-port", str(port), "--grpc-port", str(free_port())],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (home / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "maas serve never became ready"
            time.sleep(0.3)
        shots = Path(os.environ.get("MAAS_CONSOLE_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
        shots.mkdir(parents=True, exist_ok=True)
        yield ConsoleServer(url, home, tokens, shots)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


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
