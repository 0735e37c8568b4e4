"""OpenAI request bodies to core values: defaults, and bad parameters named."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from maas.errors import InvalidParameter
from maas.protocol import openai_schema as wire


def test_chat_defaults_and_parts():
    req = wire.parse_chat({"model": "m", "messages": [
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}]}]}, 8)
    assert req.messages == ({"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there"})
    assert (req.n, req.temperature, req.top_p, req.stream, req.stop) == (1, 1.0, 1.0, False, ())
    params = req.sampling(prompt_tokens=10, context=100, index=0)
    assert params.max_tokens == 90 and params.logprobs is None
    seeded = wire.parse_chat({"model": "m", "messages": [{"role": "user", "content": "x"}], "seed": 5,
                              "max_completion_tokens": 3, "max_tokens": 9, "stop": "\n"}, 8)
    assert [seeded.sampling(1, 100, i).seed for i in range(2)] == [5, 6]
    assert seeded.sampling(1, 100, 0).max_tokens == 3 and seeded.stop == ("\n",)


@pytest.mark.parametrize(("doc", "param"), [
    ([], None),
    ({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages[0].content[0]"),
    ({"model": "m", "messages": [{"role": "user", "content": None}]}, "messages[0].content"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": True}, "max_tokens"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 2.5}, "temperature"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
])
def test_bad_chat(doc, param):
    with pytest.raises(InvalidParameter) as err:
        wire.parse_chat(doc, 8)
    assert err.value.param == param


def test_embeddings_request_and_base64():
    req = wire.parse_embeddings({"model": "e", "input": ["a", "b"], "encoding_format": "base64"}, 4)
    assert req.inputs == ("a", "b") and req.encoding_format == "base64"
    with pytest.raises(InvalidParameter):
        wire.parse_embeddings({"model": "e", "input": ["a"] * 5}, 4)
    v = np.array([0.5, -1.25, 3.0], dtype=np.float32)
    item = wire.embedding_item(0, v, "base64")
    assert np.array_equal(np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4"), v)
    assert wire.embedding_item(0, v, "float")["embedding"] == [0.5, -1.25, 3.0]
