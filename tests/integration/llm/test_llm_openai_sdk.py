"""The official `openai` SDK (sync, async, streaming) against the real server with SmolLM2 and MiniLM."""

from __future__ import annotations

import asyncio

import numpy as np
import openai
import pytest

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def client(llm_server):
    with openai.OpenAI(base_url=f"{llm_server.http_url}/v1", api_key="unused", max_retries=0, timeout=120) as c:
        yield c


def test_models_are_listed_and_retrievable(client, llm_server):
    ids = {m.id for m in client.models.list()}
    assert {"smollm2", "minilm"} <= ids
    assert client.models.retrieve("smollm2").id == "smollm2"
    with openai.OpenAI(base_url=f"{llm_server.http_url}/openai/v1", api_key="x", max_retries=0) as other:
        assert {"smollm2", "minilm"} <= {m.id for m in other.models.list()}
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


@pytest.mark.parametrize("model", ["smollm2", "smollm2:2"], ids=["transformers", "onnxruntime-genai"])
def test_chat_answers_paris_at_temperature_zero(client, model):
    """The name serves version 1 on transformers (the default for text generation, @production); version 2 is
    its onnxruntime-genai conversion, selected by number."""
    resp = client.chat.completions.create(model=model, messages=QUESTION, temperature=0, max_tokens=24)
    choice = resp.choices[0]
    assert "Paris" in choice.message.content
    assert choice.message.role == "assistant"
    assert choice.finish_reason in ("stop", "length")
    assert resp.usage.prompt_tokens > 5
    assert resp.usage.completion_tokens >= 1
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_streaming_yields_exactly_the_non_streamed_text(client):
    whole = client.chat.completions.create(model="smollm2", messages=QUESTION, temperature=0, max_tokens=24)
    chunks = list(client.chat.completions.create(model="smollm2", messages=QUESTION, temperature=0, max_tokens=24,
                                                 stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_max_tokens_stop_and_logprobs(client):
    one = client.chat.completions.create(model="smollm2", messages=QUESTION, temperature=0, max_completion_tokens=1,
                                         logprobs=True, top_logprobs=3)
    assert one.choices[0].finish_reason == "length" and one.usage.completion_tokens == 1
    content = one.choices[0].logprobs.content
    assert len(content) == 1 and len(content[0].top_logprobs) == 3
    assert content[0].logprob == pytest.approx(content[0].top_logprobs[0].logprob)  # greedy took the top one
    stopped = client.chat.completions.create(model="smollm2", messages=QUESTION, temperature=0, max_tokens=24,
                                             stop=["Paris"])
    assert "Paris" not in stopped.choices[0].message.content
    assert stopped.choices[0].finish_reason == "stop"


def test_seed_reproduces_sampled_text_and_n_gives_choices(client):
    args = {"model": "smollm2", "messages": QUESTION, "temperature": 1.0, "top_p": 0.9, "max_tokens": 12, "seed": 7}
    a = client.chat.completions.create(**args, n=2)
    b = client.chat.completions.create(**args, n=2)
    assert [c.index for c in a.choices] == [0, 1]
    assert [c.message.content for c in a.choices] == [c.message.content for c in b.choices]


def test_completions_legacy_route(client):
    resp = client.completions.create(model="smollm2", prompt="The capital of France is", temperature=0,
                                     max_tokens=4, logprobs=2)
    assert resp.choices[0].text.strip()
    assert len(resp.choices[0].logprobs.tokens) == resp.usage.completion_tokens
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model="smollm2", prompt="The capital of France is", temperature=0, max_tokens=4, stream=True) if c.choices)
    assert streamed == resp.choices[0].text


def test_async_client_runs_concurrent_requests(llm_server):
    async def main():
        async with openai.AsyncOpenAI(base_url=f"{llm_server.http_url}/v1", api_key="x", max_retries=0) as c:
            solo = await c.chat.completions.create(model="smollm2", messages=QUESTION, temperature=0, max_tokens=16)
            many = await asyncio.gather(*(c.chat.completions.create(
                model="smollm2", messages=QUESTION, temperature=0, max_tokens=16) for _ in range(3)))
            stream = await c.chat.completions.create(model="smollm2", messages=QUESTION, temperature=0,
                                                     max_tokens=16, stream=True)
            parts = [ch.choices[0].delta.content or "" async for ch in stream if ch.choices]
            return solo, many, "".join(parts)

    solo, many, streamed = asyncio.run(main())
    # Joined to a running batch (left-padded) or alone: the same greedy text.
    assert {m.choices[0].message.content for m in many} == {solo.choices[0].message.content}
    assert streamed == solo.choices[0].message.content


def test_embeddings_put_paraphrases_closer_than_unrelated_sentences(client):
    texts = ["A man is playing a guitar.", "Someone is strumming a guitar.", "The stock market fell sharply today."]
    resp = client.embeddings.create(model="minilm", input=texts)  # the SDK asks for base64 and decodes it
    v = np.array([d.embedding for d in resp.data])
    assert v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    floats = client.embeddings.create(model="minilm", input=texts[0], encoding_format="float", dimensions=384)
    assert np.allclose(floats.data[0].embedding, v[0], atol=1e-5)
    assert resp.usage.prompt_tokens > 10
    with pytest.raises(openai.BadRequestError) as err:
        client.embeddings.create(model="minilm", input="x", dimensions=128)
    assert err.value.body["param"] == "dimensions"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="minilm", messages=QUESTION)
    assert err.value.body["param"] == "model"
