"""KServe v2 REST routes (+ Triton's config, repository and statistics extensions): translation only.

Inference itself is not here: `infer_route.InferEndpoint` is its one implementation, dispatched by the edge.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from maas.config import Settings
from maas.errors import InvalidArgument, NotFound, Unavailable
from maas.protocol import rest_codec
from maas.protocol.model_config import triton_config
from maas.server.body import read_body
from maas.serving.contract import DataPlane, ModelMetadata
from maas.types import TensorSpec


def json_response(doc: Any, status: int = 200) -> Response:
    return Response(rest_codec.dumps(doc), status_code=status, media_type="application/json")


def router(dataplane: DataPlane, settings: Settings) -> APIRouter:
    r = APIRouter(tags=["v2"])

    @r.get("/v2/health/live")
    async def live() -> Response:
        if not dataplane.live():
            raise Unavailable("server is not live")
        return json_response({"live": True})

    @r.get("/v2/health/ready")
    async def ready() -> Response:
        if not dataplane.ready():
            raise Unavailable("server is not ready")
        return json_response({"ready": True})

    @r.get("/v2")
    async def server_metadata() -> Response:
        md = dataplane.server_metadata()
        return json_response({"name": md.name, "version": md.version, "extensions": list(md.extensions)})

    async def model_metadata(name: str, version: str | None = None) -> Response:
        md = await dataplane.model_metadata(name, version)
        return json_response(
            {
                "name": md.name,
                "versions": list(md.versions),
                "platform": md.platform,
                "inputs": [_input_doc(t, md) for t in md.inputs],
                "outputs": [t.to_dict() for t in md.outputs],
            }
        )

    async def model_ready(name: str, version: str | None = None) -> Response:
        if not await dataplane.model_ready(name, version):
            raise Unavailable(f"model {name!r} is not ready")
        return json_response({"name": name, "ready": True})

    async def model_config(name: str, version: str | None = None) -> Response:
        return json_response(triton_config(await dataplane.model_config(name, version)))

    async def model_stats(name: str = "", version: str | None = None) -> Response:
        stats = getattr(dataplane, "model_statistics", None)
        if stats is None:
            raise NotFound("statistics are not available on this server")
        return json_response(await stats(name, version))

    # Before /v2/models/{name}, which would take "stats" for a model name.
    r.add_api_route("/v2/models/stats", model_stats, methods=["GET"])
    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        r.add_api_route(prefix, model_metadata, methods=["GET"])
        r.add_api_route(prefix + "/ready", model_ready, methods=["GET"])
        r.add_api_route(prefix + "/config", model_config, methods=["GET"])
        r.add_api_route(prefix + "/stats", model_stats, methods=["GET"])

    @r.post("/v2/repository/index")
    async def repository_index(request: Request) -> Response:
        doc = await _small_json(request)
        ready_only = doc.get("ready", False)
        if not isinstance(ready_only, bool):
            raise InvalidArgument("'ready' must be true or false")
        entries = await dataplane.repository_index(ready_only)
        return json_response(
            [{"name": e.name, "version": e.version, "state": e.state, "reason": e.reason} for e in entries]
        )

    @r.post("/v2/repository/models/{name}/load")
    async def load(name: str, request: Request) -> Response:
        _refuse_overrides(await _small_json(request))
        await dataplane.load(name)
        return json_response({})

    @r.post("/v2/repository/models/{name}/unload")
    async def unload(name: str, request: Request) -> Response:
        await _small_json(request)
        await dataplane.unload(name)
        return json_response({})

    async def _small_json(request: Request) -> dict[str, Any]:
        body = await read_body(request, 64 * 1024, setting="")
        if not body.strip():
            return {}
        doc = rest_codec.parse_json(body)
        if not isinstance(doc, dict):
            raise InvalidArgument("request body must be a JSON object")
        return doc

    return r


def _input_doc(spec: TensorSpec, md: ModelMetadata) -> dict[str, Any]:
    doc = spec.to_dict()
    encoded = next((e for e in md.encoded_inputs if e.name == spec.name), None)
    if encoded is not None:
        doc["parameters"] = {
            "encoded_image": {"datatype": encoded.datatype, "shape": list(encoded.shape), "formats": ["png", "jpeg"]}
        }
    return doc


def _refuse_overrides(doc: dict[str, Any]) -> None:
    # Triton lets a load request carry a model config and files; maas only loads what its registry holds.
    params = doc.get("parameters") or {}
    if params:
        raise InvalidArgument(
            "load parameters (config or file overrides) are not supported; register a version"
        )
