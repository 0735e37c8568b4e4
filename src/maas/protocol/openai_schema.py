"""OpenAI's wire format (chat completions, completions, embeddings, models, errors): request bodies parsed into
core values with every bad parameter named (`param`), and the response and stream-chunk documents built."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np

from maas.errors import InvalidParameter, MaasError
from maas.llm.requests import GenerationOutput, SamplingParams, TokenLogprob

ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
MAX_STOP = 4
MAX_TOP_LOGPROBS = 20
DEFAULT_MAX_TOKENS = 512


@dataclass(frozen=True)
class GenerationRequest:
    model: str
    n: int
    stream: bool
    include_usage: bool
    logprobs: bool
    top_logprobs: int
    max_tokens: int | None
    temperature: float
    top_p: float
    seed: int | None
    stop: tuple[str, ...]
    messages: tuple[dict[str, str], ...] = ()  # chat
    prompts: tuple[str, ...] = ()  # completions

    def sampling(self, prompt_tokens: int, context: int, index: int) -> SamplingParams:
        room = context - prompt_tokens
        max_tokens = self.max_tokens if self.max_tokens is not None else max(1, min(DEFAULT_MAX_TOKENS, room))
        seed = None if self.seed is None else self.seed + index
        return SamplingParams(max_tokens=max_tokens, temperature=self.temperature, top_p=self.top_p, seed=seed,
                              stop=self.stop, logprobs=self.top_logprobs if self.logprobs else None)


@dataclass(frozen=True)
class EmbeddingRequest:
    model: str
    inputs: tuple[str, ...]
    encoding_format: str
    dimensions: int | None


def _bad(param: str, message: str) -> InvalidParameter:
    return InvalidParameter(message, param)


def _int(doc: dict[str, Any], key: str, lo: int, hi: int | None = None) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(key, f"'{key}' must be an integer")
    if value < lo or (hi is not None and value > hi):
        raise _bad(key, f"'{key}' must be between {lo} and {hi}" if hi is not None else f"'{key}' must be >= {lo}")
    return value


def _number(doc: dict[str, Any], key: str, default: float, lo: float, hi: float, lo_open: bool = False) -> float:
    value = doc.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise _bad(key, f"'{key}' must be a number")
    if value < lo or value > hi or (lo_open and value == lo):
        raise _bad(key, f"'{key}' must be in {'(' if lo_open else '['}{lo}, {hi}]")
    return float(value)


def _bool(doc: dict[str, Any], key: str) -> bool:
    value = doc.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _bad(key, f"'{key}' must be a boolean")
    return value


def _text(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise _bad(param, f"'{param}' must be a string")
    if "\x00" in value:
        raise _bad(param, f"'{param}' contains a NUL character")
    return value


def _object(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise InvalidParameter("the request body must be a JSON object", None)
    return doc


def _model(doc: dict[str, Any]) -> str:
    model = doc.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model", "'model' is required: the name of a served model")
    return model


def _common(doc: dict[str, Any], max_n: int) -> dict[str, Any]:
    max_tokens = _int(doc, "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = _int(doc, "max_tokens", 1)
    stop = doc.get("stop")
    if stop is None:
        stops: tuple[str, ...] = ()
    elif isinstance(stop, str):
        stops = (stop,)
    elif isinstance(stop, list) and len(stop) <= MAX_STOP and all(isinstance(s, str) and s for s in stop):
        stops = tuple(stop)
    else:
        raise _bad("stop", f"'stop' must be a string or a list of at most {MAX_STOP} non-empty strings")
    stream = _bool(doc, "stream")
    options = doc.get("stream_options")
    include_usage = False
    if options is not None:
        if not stream:
            raise _bad("stream_options", "'stream_options' is only allowed with 'stream': true")
        if not isinstance(options, dict):
            raise _bad("stream_options", "'stream_options' must be an object")
        include_usage = _bool(options, "include_usage")
    seed = doc.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise _bad("seed", "'seed' must be an integer")
    return {
        "model": _model(doc), "n": _int(doc, "n", 1, max_n) or 1, "stream": stream, "include_usage": include_usage,
        "max_tokens": max_tokens, "temperature": _number(doc, "temperature", 1.0, 0.0, 2.0),
        "top_p": _number(doc, "top_p", 1.0, 0.0, 1.0, lo_open=True), "seed": seed, "stop": stops,
    }


def parse_chat(doc: Any, max_n: int) -> GenerationRequest:
    doc = _object(doc)
    messages = doc.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages", "'messages' must be a non-empty list")
    parsed: list[dict[str, str]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise _bad(f"messages[{i}]", f"messages[{i}] must be an object with 'role' and 'content'")
        role = m.get("role")
        if role not in ROLES:
            raise _bad(f"messages[{i}].role", f"messages[{i}].role must be one of {sorted(ROLES)}")
        content = m.get("content")
        if isinstance(content, list):  # content parts: only text ones are understood
            texts = []
            for j, part in enumerate(content):
                if not isinstance(part, dict) or part.get("type") != "text":
                    raise _bad(f"messages[{i}].content[{j}]", "only text content parts are supported")
                texts.append(_text(part.get("text"), f"messages[{i}].content[{j}].text"))
            content = "".join(texts)
        parsed.append({"role": "system" if role == "developer" else str(role),
                       "content": _text(content, f"messages[{i}].content")})
    common = _common(doc, max_n)
    logprobs = _bool(doc, "logprobs")
    top = _int(doc, "top_logprobs", 0, MAX_TOP_LOGPROBS)
    if top is not None and not logprobs:
        raise _bad("top_logprobs", "'top_logprobs' needs 'logprobs': true")
    return GenerationRequest(**common, logprobs=logprobs, top_logprobs=top or 0, messages=tuple(parsed))


def parse_completion(doc: Any, max_n: int) -> GenerationRequest:
    doc = _object(doc)
    prompt = doc.get("prompt")
    if isinstance(prompt, str):
        prompts: tuple[str, ...] = (prompt,)
    elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        prompts = tuple(prompt)
    else:
        raise _bad("prompt", "'prompt' must be a string or a non-empty list of strings")
    for i, p in enumerate(prompts):
        if not p:
            raise _bad("prompt", f"prompt[{i}] is empty")
        _text(p, "prompt")
    common = _common(doc, max_n)
    top = _int(doc, "logprobs", 0, 5)
    return GenerationRequest(**common, logprobs=top is not None, top_logprobs=top or 0, prompts=prompts)


def parse_embeddings(doc: Any, max_inputs: int) -> EmbeddingRequest:
    doc = _object(doc)
    value = doc.get("input")
    if isinstance(value, str):
        inputs: tuple[str, ...] = (value,)
    elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        inputs = tuple(value)
    else:
        raise _bad("input", "'input' must be a string or a non-empty list of strings")
    if len(inputs) > max_inputs:
        raise _bad("input", f"'input' has {len(inputs)} texts; at most {max_inputs} per request")
    for i, text in enumerate(inputs):
        if not text:
            raise _bad("input", f"input[{i}] is empty")
        _text(text, "input")
    fmt = doc.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise _bad("encoding_format", "'encoding_format' must be 'float' or 'base64'")
    return EmbeddingRequest(_model(doc), inputs, str(fmt), _int(doc, "dimensions", 1))


# --- responses ----------------------------------------------------------------------------------------------

def error_body(exc: MaasError, status: int) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
            404: "not_found_error", 413: "invalid_request_error", 429: "rate_limit_error"}.get(status, "server_error")
    code = {404: "model_not_found", 429: "rate_limit_exceeded"}.get(status)
    return {"error": {"message": exc.message, "type": kind, "param": getattr(exc, "param", None), "code": code}}


def model_card(name: str, created: int, **extra: Any) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": "maas", **extra}


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _bytes(token: str) -> list[int]:
    return list(token.encode("utf-8", "replace"))


def chat_logprobs(items: list[TokenLogprob]) -> dict[str, Any]:
    return {"content": [
        {"token": t.token, "logprob": t.logprob, "bytes": _bytes(t.token),
         "top_logprobs": [{"token": s, "logprob": lp, "bytes": _bytes(s)} for s, lp in t.top]}
        for t in items
    ], "refusal": None}


def completion_logprobs(items: list[TokenLogprob], offset: int = 0) -> dict[str, Any]:
    offsets, at = [], offset
    for t in items:
        offsets.append(at)
        at += len(t.token)
    return {"tokens": [t.token for t in items], "token_logprobs": [t.logprob for t in items],
            "top_logprobs": [dict(t.top) for t in items], "text_offset": offsets}


@dataclass
class Choice:
    """One choice as it accumulates."""

    text: str = ""
    logprobs: list[TokenLogprob] | None = None
    finish_reason: str | None = None
    completion_tokens: int = 0

    def add(self, out: GenerationOutput, want_logprobs: bool) -> None:
        self.text += out.text
        if want_logprobs:
            self.logprobs = (self.logprobs or []) + out.logprobs
        self.completion_tokens = out.completion_tokens
        if out.finish_reason is not None:
            self.finish_reason = out.finish_reason


def chat_choice(index: int, choice: Choice, want_logprobs: bool) -> dict[str, Any]:
    return {"index": index, "message": {"role": "assistant", "content": choice.text, "refusal": None},
            "logprobs": chat_logprobs(choice.logprobs or []) if want_logprobs else None,
            "finish_reason": choice.finish_reason}


def completion_choice(index: int, choice: Choice, want_logprobs: bool) -> dict[str, Any]:
    return {"index": index, "text": choice.text,
            "logprobs": completion_logprobs(choice.logprobs or []) if want_logprobs else None,
            "finish_reason": choice.finish_reason}


def embedding_item(index: int, vector: np.ndarray, fmt: str) -> dict[str, Any]:
    data: Any = (base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii") if fmt == "base64"
                 else vector.astype(np.float32).tolist())
    return {"object": "embedding", "index": index, "embedding": data}
