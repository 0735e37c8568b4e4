"""The playground's chat box streams a text-generation model's answer over `/v1/chat/completions` (a tiny
random-weight Llama on a keyless loopback server: no sign-in, as the API)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from maas.config import Settings
from maas.registry import Registry
from maas.testing.live_server import LiveServer, live_server

from ...unit.llm.tiny_lm import tiny_llama

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from maas.llm.importing import register_live

    settings = Settings(home=tmp_path_factory.mktemp("console-chat"))
    model, tokenizer = tiny_llama()
    with Registry(settings) as registry:
        register_live(registry, model, tokenizer, name="tiny-chat")
    with live_server(settings) as server:
        body = {"model": "tiny-chat", "messages": [{"role": "user", "content": "w5"}], "max_tokens": 1}
        deadline = time.monotonic() + 120
        while httpx.post(f"{server.http_url}/v1/chat/completions", json=body, timeout=60).status_code != 200:
            assert time.monotonic() < deadline, "the language model never loaded"
            time.sleep(0.5)
        yield server


def test_the_chat_box_streams_the_models_answer(browser: Any, chat_server: LiveServer) -> None:
    context = browser.new_context(base_url=chat_server.http_url)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        streamed: list[str] = []
        page.on("response", lambda r: streamed.append(r.headers.get("content-type", ""))
                if r.url.endswith("/v1/chat/completions") else None)
        page.goto("/console/playground?model=tiny-chat")
        assert page.locator("#chat-form").count() == 1
        page.fill("#chat-form input[name=message]", "w5 w6 w7")
        page.fill("#chat-form input[name=temperature]", "0")  # greedy: the answer is the API's, below
        page.click("#chat-form button[type=submit]")
        try:
            page.wait_for_function("() => document.querySelector('#chat-log .assistant')?.textContent.length > 0",
                                   timeout=60_000)
        except Exception as exc:
            raise AssertionError(f"no answer; the page showed {page.locator('#flash').inner_text()!r}") from exc
        assert streamed and streamed[0].startswith("text/event-stream")
        page.wait_for_function("() => document.querySelector('#chat-log .assistant')?.dataset.done === 'true'")
        answer = page.locator("#chat-log .assistant").inner_text()
        body = {"model": "tiny-chat", "messages": [{"role": "user", "content": "w5 w6 w7"}], "temperature": 0}
        whole = httpx.post(f"{chat_server.http_url}/v1/chat/completions", json=body, timeout=60).json()
        assert whole["choices"][0]["message"]["content"].strip()
        assert answer.strip() == whole["choices"][0]["message"]["content"].strip() and errors == []
    finally:
        context.close()
