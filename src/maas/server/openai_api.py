"""The OpenAI-compatible routes (`/v1/...` and `/openai/v1/...`): chat completions, completions, embeddings
and models over `LanguageModelService`; translation only. Streams are server-sent events (`data: {chunk}`,
then `data: [DONE]`); a client that leaves mid-request has its sequences cancelled at once.

Authorisation: these routes need the `infer` scope (the app's auth middleware); the model named in the body is
checked against the key's models here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from maas.config import Settings
from maas.errors import InvalidParameter, MaasError, NotFound
from maas.llm.engine import RequestHandle
from maas.llm.requests import GenerationOutput
from maas.llm.service import LanguageModelService, LoadedLanguageModel
from maas.protocol import openai_schema as wire
from maas.protocol.rest_codec import parse_json
from maas.registry import Registry
from maas.server.auth import check_model
from maas.server.body import read_body
from maas.server.errors import status_of
from maas.types import ModelRef

log = logging.getLogger(__name__)

SCOPE = "infer"
PREFIXES = ("/v1", "/openai/v1")
DISCONNECT_POLL_S = 0.1


def _error(exc: MaasError) -> JSONResponse:
    status = status_of(exc)
    return JSONResponse(wire.error_body(exc, status), status_code=status)


def _json(doc: Any) -> Response:
    return Response(orjson.dumps(doc), media_type="application/json")


def _created(loaded: LoadedLanguageModel) -> int:
    at = loaded.version.created_at
    return int(at.timestamp()) if at else int(time.time())


async def _merged(handles: list[RequestHandle]) -> AsyncIterator[tuple[int, GenerationOutput]]:
    """The outputs of several sequences as they come, tagged with each one's index."""
    if len(handles) == 1:
        async for out in handles[0].stream():
            yield 0, out
        return
    queue: asyncio.Queue[tuple[int, GenerationOutput | BaseException | None]] = asyncio.Queue()

    async def pump(i: int, handle: RequestHandle) -> None:
        try:
            async for out in handle.stream():
                queue.put_nowait((i, out))
            queue.put_nowait((i, None))
        except BaseException as exc:  # noqa: B036 - handed to the consumer, which re-raises it
            queue.put_nowait((i, exc))

    tasks = [asyncio.create_task(pump(i, h)) for i, h in enumerate(handles)]
    try:
        left = len(handles)
        while left:
            i, item = await queue.get()
            if item is None:
                left -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield i, item
    finally:
        for t in tasks:
            t.cancel()
        for h in handles:
            h.cancel()


class OpenAiRoutes:
    def __init__(self, service: LanguageModelService, registry: Registry, settings: Settings) -> None:
        self.service = service
        self.registry = registry
        self.limit = settings.max_request_bytes
        self.llm = service.settings

    # --- models -------------------------------------------------------------------------------------------
    async def list_models(self) -> Response:
        versions = await self.service.list_models()
        return _json({"object": "list", "data": [
            wire.model_card(v.model, int(v.created_at.timestamp()) if v.created_at else 0) for v in versions]})

    async def get_model(self, name: str) -> Response:
        """OpenAI's model object, plus TF-Serving's `model_version_status`, so both kinds of client accept it."""
        try:
            version = await asyncio.to_thread(self.registry.get, ModelRef.parse(name))
        except MaasError:
            return _error(NotFound(f"the model {name[:100]!r} does not exist"))
        created = int(version.created_at.timestamp()) if version.created_at else 0
        status = [{"version": str(version.version), "state": "AVAILABLE",
                   "status": {"error_code": "OK", "error_message": ""}}]
        return _json(wire.model_card(version.model, created, model_version_status=status))

    # --- generation ---------------------------------------------------------------------------------------
    async def _read(self, request: Request) -> Any:
        return parse_json(await read_body(request, self.limit))

    async def _text_model(self, model: str) -> LoadedLanguageModel:
        loaded = await self.service.resolve(model)
        if loaded.engine is None:
            raise InvalidParameter(f"{loaded.version.ref} is an embedding model; use /v1/embeddings", "model")
        return loaded

    def _submit(self, loaded: LoadedLanguageModel, prompts: list[list[int]], req: wire.GenerationRequest
                ) -> list[RequestHandle]:
        engine = loaded.engine
        assert engine is not None
        handles: list[RequestHandle] = []
        try:
            for prompt in prompts:
                for j in range(req.n):
                    handles.append(engine.submit(prompt, req.sampling(len(prompt), loaded.context_length, j)))
        except MaasError:
            for h in handles:
                h.cancel()
            raise
        return handles

    async def chat(self, request: Request) -> Response:
        try:
            req = wire.parse_chat(await self._read(request), self.llm.max_n)
            check_model(request.scope, req.model)  # the key may be limited to some models
            loaded = await self._text_model(req.model)
            prompt = loaded.runtime.chat_prompt(list(req.messages))
            handles = self._submit(loaded, [prompt], req)
        except MaasError as exc:
            return _error(exc)
        return await self._respond(request, req, loaded, handles, [len(prompt)], chat=True)

    async def completions(self, request: Request) -> Response:
        try:
            req = wire.parse_completion(await self._read(request), self.llm.max_n)
            check_model(request.scope, req.model)  # the key may be limited to some models
            loaded = await self._text_model(req.model)
            prompts = [loaded.runtime.encode(p) for p in req.prompts]
            handles = self._submit(loaded, prompts, req)
        except MaasError as exc:
            return _error(exc)
        return await self._respond(request, req, loaded, handles, [len(p) for p in prompts], chat=False)

    async def _respond(self, request: Request, req: wire.GenerationRequest, loaded: LoadedLanguageModel,
                       handles: list[RequestHandle], prompt_lens: list[int], *, chat: bool) -> Response:
        rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        prompt_tokens = sum(prompt_lens)  # once per prompt, however many choices (as OpenAI counts)
        if req.stream:
            body = self._stream(rid, req, loaded, handles, prompt_tokens, chat)
            return StreamingResponse(body, media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        choices = [wire.Choice() for _ in handles]

        async def collect() -> None:
            async for i, out in _merged(handles):
                choices[i].add(out, req.logprobs)

        try:
            await _until_disconnect(request, collect())
        except MaasError as exc:
            return _error(exc)
        if choices and any(c.finish_reason is None for c in choices):  # the client left: nobody to answer
            return Response(status_code=499)
        build = wire.chat_choice if chat else wire.completion_choice
        completion = sum(c.completion_tokens for c in choices)
        return _json({
            "id": rid, "object": "chat.completion" if chat else "text_completion", "created": int(time.time()),
            "model": req.model, "system_fingerprint": f"maas-{loaded.version.ref}",
            "choices": [build(i, c, req.logprobs) for i, c in enumerate(choices)],
            "usage": wire.usage(prompt_tokens, completion),
        })

    async def _stream(self, rid: str, req: wire.GenerationRequest, loaded: LoadedLanguageModel,
                      handles: list[RequestHandle], prompt_tokens: int, chat: bool) -> AsyncIterator[bytes]:
        created = int(time.time())
        base = {"id": rid, "object": "chat.completion.chunk" if chat else "text_completion", "created": created,
                "model": req.model, "system_fingerprint": f"maas-{loaded.version.ref}"}
        extra = {"usage": None} if req.include_usage else {}
        completion = [0] * len(handles)
        offsets = [0] * len(handles)

        def event(doc: dict[str, Any]) -> bytes:
            return b"data: " + orjson.dumps(doc) + b"\n\n"

        try:
            if chat:
                for i in range(len(handles)):
                    yield event({**base, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""},
                                                      "logprobs": None, "finish_reason": None}], **extra})
            try:
                async for i, out in _merged(handles):
                    completion[i] = out.completion_tokens
                    if not out.text and out.finish_reason is None and not (req.logprobs and out.logprobs):
                        continue
                    if chat:
                        choice: dict[str, Any] = {
                            "index": i, "delta": {"content": out.text} if out.text else {},
                            "logprobs": wire.chat_logprobs(out.logprobs) if req.logprobs else None,
                            "finish_reason": out.finish_reason}
                    else:
                        choice = {"index": i, "text": out.text,
                                  "logprobs": wire.completion_logprobs(out.logprobs, offsets[i])
                                  if req.logprobs else None,
                                  "finish_reason": out.finish_reason}
                        offsets[i] += len(out.text)
                    yield event({**base, "choices": [choice], **extra})
            except MaasError as exc:  # mid-stream (timeout, shutdown): the error as the last event
                yield event(wire.error_body(exc, status_of(exc)))
                yield b"data: [DONE]\n\n"
                return
            if req.include_usage:
                yield event({**base, "choices": [], "usage": wire.usage(prompt_tokens, sum(completion))})
            yield b"data: [DONE]\n\n"
        finally:
            for h in handles:
                h.cancel()

    # --- embeddings ---------------------------------------------------------------------------------------
    async def embeddings(self, request: Request) -> Response:
        try:
            req = wire.parse_embeddings(await self._read(request), self.llm.max_embedding_inputs)
            check_model(request.scope, req.model)  # the key may be limited to some models
            loaded = await self.service.resolve(req.model)
            if loaded.kind != "embedding":
                raise InvalidParameter(f"{loaded.version.ref} is not an embedding model", "model")
            dims = int(loaded.runtime.dimensions)
            truncatable = bool(loaded.version.config.get("matryoshka"))
            if req.dimensions is not None and req.dimensions != dims and not (truncatable and req.dimensions < dims):
                raise InvalidParameter(f"{loaded.version.ref} gives {dims}-dimensional embeddings only",
                                       "dimensions")
            vectors, tokens = await loaded.embed(list(req.inputs), self.llm.embedding_waiting)
        except MaasError as exc:
            return _error(exc)
        if req.dimensions is not None and req.dimensions < vectors.shape[1]:
            vectors = vectors[:, : req.dimensions]
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return _json({"object": "list", "model": req.model,
                      "data": [wire.embedding_item(i, v, req.encoding_format) for i, v in enumerate(vectors)],
                      "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


async def _until_disconnect(request: Request, work: Any) -> None:
    """Run `work`; if the client disconnects first, cancel it (which cancels its sequences)."""
    task = asyncio.ensure_future(work)
    try:
        while not task.done():
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if done:
                break
            if await request.is_disconnected():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                return
        task.result()
    finally:
        if not task.done():
            task.cancel()


def router(service: LanguageModelService, registry: Registry, settings: Settings) -> APIRouter:
    routes = OpenAiRoutes(service, registry, settings)
    r = APIRouter(tags=["openai"])
    for prefix in PREFIXES:
        r.add_api_route(f"{prefix}/models", routes.list_models, methods=["GET"])
        r.add_api_route(prefix + "/models/{name}", routes.get_model, methods=["GET"])
        r.add_api_route(f"{prefix}/chat/completions", routes.chat, methods=["POST"])
        r.add_api_route(f"{prefix}/completions", routes.completions, methods=["POST"])
        r.add_api_route(f"{prefix}/embeddings", routes.embeddings, methods=["POST"])
    return r
