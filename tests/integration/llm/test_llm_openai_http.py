"""The OpenAI routes at the HTTP level: bad input answered 400 with `param` in OpenAI's error shape, 404 for an
unknown model, a prompt over the context, a client leaving mid-stream frees its slot, 429 when saturated, and
the language-model metrics on /metrics."""

from __future__ import annotations

import json
import time

import httpx
import pytest

CHAT = "/v1/chat/completions"
Q = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def http(llm_server):
    with httpx.Client(base_url=llm_server.http_url, timeout=120) as client:
        yield client


def chat(**kw):
    return {"model": "smollm2", "messages": Q, "max_tokens": 4, "temperature": 0, **kw}


BAD = [
    ({"model": "smollm2", "messages": []}, "messages"),
    ({"model": "smollm2", "messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
    ({"model": "smollm2", "messages": [{"role": "user", "content": 42}]}, "messages[0].content"),
    ({"model": "smollm2", "messages": [{"role": "user", "content": {"a": 1}}]}, "messages[0].content"),
    ({"model": "smollm2", "messages": [{"role": "user", "content": "a\u0000b"}]}, "messages[0].content"),
    ({"model": "smollm2", "messages": "hello"}, "messages"),
    (chat(max_tokens=0), "max_tokens"),
    (chat(max_tokens=-3), "max_tokens"),
    (chat(max_tokens=10**9), "max_tokens"),
    (chat(max_completion_tokens="many"), "max_completion_tokens"),
    (chat(temperature=-0.5), "temperature"),
    (chat(temperature="hot"), "temperature"),
    (chat(top_p=0), "top_p"),
    (chat(n=1000), "n"),
    (chat(n=0), "n"),
    (chat(stop=["a", "b", "c", "d", "e"]), "stop"),
    (chat(seed="x"), "seed"),
    (chat(top_logprobs=3), "top_logprobs"),
    (chat(logprobs=True, top_logprobs=99), "top_logprobs"),
    (chat(stream_options={"include_usage": True}), "stream_options"),
    (chat(model="minilm"), "model"),
    ({"messages": Q}, "model"),
]


@pytest.mark.parametrize(("body", "param"), BAD, ids=[p for _, p in BAD])
def test_bad_chat_requests_are_400_naming_the_parameter(http, body, param):
    resp = http.post(CHAT, json=body)
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]
    assert err["param"] == param and err["type"] == "invalid_request_error" and err["message"]


def test_other_bad_requests(http):
    for path, body, param in [
        ("/v1/completions", {"model": "smollm2", "prompt": ""}, "prompt"),
        ("/v1/completions", {"model": "smollm2", "prompt": [1, 2]}, "prompt"),
        ("/v1/embeddings", {"model": "minilm", "input": []}, "input"),
        ("/v1/embeddings", {"model": "minilm", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ("/v1/embeddings", {"model": "smollm2", "input": "x"}, "model"),
    ]:
        resp = http.post(path, json=body)
        assert resp.status_code == 400 and resp.json()["error"]["param"] == param, (path, resp.text)
    resp = http.post(CHAT, content=b"{not json")
    assert resp.status_code == 400 and "error" in resp.json()
    resp = http.post(CHAT, json=chat(model="no-such-model"))
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "model_not_found"
    long_prompt = [{"role": "user", "content": "hello " * 9000}]
    resp = http.post(CHAT, json=chat(messages=long_prompt))
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "messages"


def test_content_that_looks_like_sse_cannot_break_the_stream(http):
    evil = [{"role": "user", "content": "Repeat: \n\ndata: [DONE]\n\nevent: x\r\n"}]
    with http.stream("POST", CHAT, json=chat(messages=evil, max_tokens=12, stream=True)) as resp:
        assert resp.status_code == 200
        lines = [ln for ln in resp.iter_lines() if ln]
    assert lines[-1] == "data: [DONE]" and all(ln.startswith("data: ") for ln in lines)
    docs = [json.loads(ln[6:]) for ln in lines[:-1]]
    assert docs[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_model_path_answers_openai_and_tf_serving_clients(http):
    doc = http.get("/v1/models/smollm2").json()
    assert doc["id"] == "smollm2" and doc["object"] == "model"
    assert doc["model_version_status"][0]["state"] == "AVAILABLE"


def running(http) -> float:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith('maas_llm_requests_running{model="smollm2"'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_idle(http, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while running(http) and time.monotonic() < deadline:
        time.sleep(0.05)
    return running(http)


def test_a_client_leaving_mid_stream_frees_its_slot(llm_server, http):
    with httpx.Client(base_url=llm_server.http_url, timeout=60) as own, \
            own.stream("POST", CHAT, json=chat(max_tokens=2000, stream=True, temperature=1.0)) as resp:
        lines = resp.iter_lines()
        assert next(lines).startswith("data: ")
        next(lines)
        assert running(http) == 1
    assert wait_idle(http, 10) == 0  # long before 2000 tokens could have been made


def test_saturation_is_429_and_leaves_nothing_running(http):
    # 4 running + 4 waiting fit; a ninth sequence does not (limits set by the fixture).
    resp = http.post(CHAT, json=chat(n=9, max_tokens=50))
    assert resp.status_code == 429
    assert resp.json()["error"]["type"] == "rate_limit_error"
    assert wait_idle(http) == 0
    ok = http.post(CHAT, json=chat(n=8, max_tokens=2))
    assert ok.status_code == 200 and len(ok.json()["choices"]) == 8


def test_metrics_report_latency_tokens_and_cache(http):
    assert http.post(CHAT, json=chat()).status_code == 200
    text = http.get("/metrics").text
    for name in ("maas_llm_time_to_first_token_seconds_count", "maas_llm_inter_token_latency_seconds_count",
                 "maas_llm_e2e_request_latency_seconds_count", "maas_llm_prompt_tokens_total",
                 "maas_llm_generation_tokens_total", "maas_llm_requests_waiting", "maas_llm_kv_cache_usage_ratio",
                 "maas_llm_embedding_inputs_total"):
        assert f'{name}{{model="smollm2"' in text or f'{name}{{model="minilm"' in text, name


def test_artifact_downloads_honour_range(http):
    whole = http.get("/api/v1/versions/minilm:1/artifacts/vocab.txt")
    assert whole.status_code == 200 and whole.headers.get("accept-ranges") == "bytes"
    part = http.get("/api/v1/versions/minilm:1/artifacts/vocab.txt", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"
