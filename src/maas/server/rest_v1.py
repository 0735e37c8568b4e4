"""TF-Serving style `POST /v1/models/{name}[/versions/{v}]:predict`, for older clients: translation only."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from maas.config import Settings
from maas.protocol import rest_v1_codec
from maas.server.access import exchange_of
from maas.server.body import read_body
from maas.serving.contract import DataPlane


def router(dataplane: DataPlane, settings: Settings) -> APIRouter:
    r = APIRouter(tags=["v1"])
    limit = settings.max_request_bytes

    async def predict(request: Request, name: str, version: str | None = None) -> Response:
        exchange = exchange_of(request.scope)
        if exchange is not None:  # for the edge's access log, even when the request fails
            exchange.model, exchange.version = name, version or ""
        body = await read_body(request, limit)
        metadata = await dataplane.model_metadata(name, version)
        req, row_format = rest_v1_codec.decode_predict(body, metadata, version)
        req.headers = dict(request.headers)
        req.protocol = "rest"
        try:
            resp = await dataplane.infer(req)
        finally:
            if exchange is not None and req.served_version:
                exchange.version = req.served_version
        return Response(rest_v1_codec.encode_predict(resp, row_format), media_type="application/json",
                        headers={"x-model-version": resp.model_version})

    r.add_api_route("/v1/models/{name}:predict", predict, methods=["POST"])
    r.add_api_route("/v1/models/{name}/versions/{version}:predict", predict, methods=["POST"])
    return r
