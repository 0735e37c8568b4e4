"""Control API of traffic: `/api/v1/models/{name}/traffic` (GET/PUT/DELETE) and `/rollout` (POST/GET, and
pause/resume/abort/promote). Translation only: every check and decision is `maas.traffic`'s."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from maas.errors import InvalidArgument
from maas.registry import Registry
from maas.traffic import TrafficService, TrafficSplit

ROLLOUT_FIELDS = {"to", "steps", "interval_s", "thresholds"}


def router(registry: Registry) -> APIRouter:
    r = APIRouter(prefix="/api/v1/models/{name}", tags=["traffic"])
    service = TrafficService(registry)

    @r.get("/traffic")
    def get_traffic(name: str) -> dict[str, Any]:
        return service.describe(name)

    @r.put("/traffic")
    def put_traffic(name: str, body: Annotated[Any, Body()]) -> dict[str, Any]:
        service.set_split(name, TrafficSplit.from_dict(body))
        return service.describe(name)

    @r.delete("/traffic")
    def delete_traffic(name: str) -> dict[str, Any]:
        service.clear_split(name)
        return service.describe(name)

    @r.post("/rollout", status_code=201)
    def start_rollout(name: str, body: Annotated[Any, Body()]) -> dict[str, Any]:
        if not isinstance(body, dict) or "to" not in body:
            raise InvalidArgument('a rollout needs a JSON object with "to": the candidate version')
        doc = dict(body)
        thresholds = doc.pop("thresholds", None) or {}
        if not isinstance(thresholds, dict):
            raise InvalidArgument("'thresholds' must be an object")
        extra = {k: doc.pop(k) for k in list(doc) if k not in ROLLOUT_FIELDS}  # thresholds may sit at top level
        kwargs: dict[str, Any] = {k: doc[k] for k in ("steps", "interval_s") if k in doc}
        return service.start_rollout(name, doc["to"], thresholds={**thresholds, **extra}, **kwargs).to_dict()

    @r.get("/rollout")
    def get_rollout(name: str) -> dict[str, Any]:
        return service.get_rollout(name).to_dict()

    @r.post("/rollout/pause")
    def pause(name: str) -> dict[str, Any]:
        return service.pause(name).to_dict()

    @r.post("/rollout/resume")
    def resume(name: str) -> dict[str, Any]:
        return service.resume(name).to_dict()

    @r.post("/rollout/abort")
    def abort(name: str) -> dict[str, Any]:
        return service.abort(name).to_dict()

    @r.post("/rollout/promote")
    def promote(name: str) -> dict[str, Any]:
        return service.promote(name).to_dict()

    return r
