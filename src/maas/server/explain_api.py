"""`POST /v2/models/{name}[/versions/{version}]/explain`: infer's body (JSON or the binary extension, through
the same codec) plus explain `parameters`; answers the prediction explained, the method, the base value and
attributions shaped like each input. Translation only: the work is `maas.explain.ExplainService`'s."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response

from maas.config import Settings
from maas.explain import Explanation
from maas.explain.service import ExplainService
from maas.protocol import rest_codec
from maas.registry import ModelVersion, Registry
from maas.server.body import read_body


def service(registry: Registry, dataplane: Any, settings: Settings) -> ExplainService:
    """An explain service resolving versions exactly as the data plane does (aliases, splits, readiness)."""

    async def resolve(name: str, version: str | None) -> ModelVersion:
        loaded = await dataplane.repository.resolve(name, version)
        return loaded.parts.version  # type: ignore[no-any-return]

    options = getattr(dataplane, "options", None)
    pixels = getattr(options, "max_image_pixels", 4096 * 4096)
    return ExplainService(registry, settings, resolve, pixels)


def router(explainer: ExplainService, settings: Settings) -> APIRouter:
    r = APIRouter(tags=["v2"])
    limit = settings.max_request_bytes

    async def explain(request: Request, name: str, version: str | None = None) -> Response:
        body = await read_body(request, limit)
        header_len = request.headers.get(rest_codec.HEADER_LENGTH)
        req = await asyncio.to_thread(rest_codec.decode_request, body, name, version, header_len)
        result = await explainer.explain(req)
        content = await asyncio.to_thread(encode, result, req.id)
        return Response(content, media_type="application/json")

    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        r.add_api_route(prefix + "/explain", explain, methods=["POST"])
    return r


def encode(result: Explanation, request_id: str | None) -> bytes:
    model, _, number = result.ref.rpartition(":")
    doc: dict[str, Any] = {"model_name": model, "model_version": number}
    if request_id is not None:
        doc["id"] = request_id
    doc.update(result.summary())
    doc["outputs"] = [_tensor(result.output, result.scores)]
    doc["attributions"] = [_tensor(name, a) for name, a in result.attributions.items()]
    return rest_codec.dumps(doc)


def _tensor(name: str, data: np.ndarray) -> dict[str, Any]:
    values = np.asarray(data, dtype=np.float32)
    return {"name": name, "datatype": "FP32", "shape": list(values.shape), "data": values.ravel().tolist()}
