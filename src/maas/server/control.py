"""Control API under /api/v1: the CLI's registry verbs over HTTP (models, versions, aliases, tags, upload).

Only translation happens here; every decision is the registry's (or the importer's)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from maas import json_limits
from maas.config import Settings
from maas.errors import InvalidArgument
from maas.formats.options import ImportOptions
from maas.jobs import JobRunner
from maas.registry import Registry
from maas.server.byte_ranges import ranged_response
from maas.server.remote_trust import asks_trust, grant_trust
from maas.server.upload import receive_upload
from maas.types import check_name, parse_tag, parse_version


class ModelPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str | None = Field(None, max_length=10_000)
    tags: dict[str, str] = Field(default_factory=dict)
    remove_tags: list[str] = Field(default_factory=list)


class TagPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tags: dict[str, str] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)


class AliasBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1)


def router(registry: Registry, settings: Settings, jobs: JobRunner | None = None) -> APIRouter:
    r = APIRouter(prefix="/api/v1", tags=["control"])

    @r.get("/models")
    def list_models() -> list[dict[str, Any]]:
        return [m.to_dict() for m in registry.list_models()]

    @r.patch("/models/{name}")
    def patch_model(name: str, body: ModelPatch) -> dict[str, Any]:
        return registry.update_model(
            name, description=body.description, tags=body.tags, remove_tags=body.remove_tags
        ).to_dict()

    @r.delete("/models/{name}")
    def delete_model(name: str) -> dict[str, Any]:
        registry.delete_model(name)
        return {"deleted": name}

    @r.get("/models/{name}/versions")
    def list_versions(name: str) -> list[dict[str, Any]]:
        return [v.to_dict() for v in registry.list_versions(name)]

    @r.post("/models/{name}/versions", status_code=201)
    async def upload_version(name: str, request: Request, response: Response, background: bool = False) -> Any:
        """Upload a model file (multipart field `file`) and import it as the next version; with
        `?background=true` the import runs as a job and the answer is the job (202)."""
        check_name(name)
        with registry.work_dir("maas-upload-") as tmp:  # memory-backed and private when encrypted
            up = await receive_upload(request, settings.max_upload_bytes, tmp)
            if "file" not in up.files:
                raise InvalidArgument("the upload has no file part named 'file'")
            trust = grant_trust(request, settings, asks_trust(up.one("trust", "")))
            options = replace(import_options(up), trust=trust)
            if background and jobs is not None:
                sha = await run_in_threadpool(registry.stage_input, up.files["file"])
                params = {"blob": sha, "extension": up.files["file"].suffix if up.files["file"].suffix else "",
                          "name": name, **options.to_params()}
                if up.files["file"].name.endswith(".tar.gz"):
                    params["extension"] = ".tar.gz"
                job = await run_in_threadpool(jobs.submit, "import", params, sha)
                response.status_code = 202
                return job.to_dict()
            version = await run_in_threadpool(run_import, registry, up.files["file"], name, options)
            return dict(version.to_dict())

    @r.post("/versions/{ref:path}/archive")
    def archive(ref: str) -> dict[str, Any]:
        return registry.archive(ref).to_dict()

    @r.patch("/versions/{ref:path}/tags")
    def tag(ref: str, body: TagPatch) -> dict[str, Any]:
        return registry.tag(ref, body.tags, body.remove).to_dict()

    @r.get("/versions/{ref:path}/artifacts/{role}")
    def download(ref: str, role: str, request: Request) -> Response:
        v = registry.get(ref)
        data = registry.read_artifact(v, v.artifact(role).role)  # verified plaintext, never written to disk
        return ranged_response(data, request.headers.get("range"),
                               {"Content-Disposition": f'attachment; filename="{v.model}-{v.version}-{role}"'})

    @r.get("/versions/{ref:path}")
    def get_version(ref: str) -> dict[str, Any]:
        return registry.get(ref).to_dict()

    @r.get("/models/{name:path}")
    def get_model(name: str) -> dict[str, Any]:
        model = registry.get_model(name)
        return {**model.to_dict(), "versions": [v.to_dict() for v in registry.list_versions(name)]}

    @r.put("/models/{name}/aliases/{alias}")
    def set_alias(name: str, alias: str, body: AliasBody) -> dict[str, Any]:
        return registry.set_alias(name, alias, body.version).to_dict()

    @r.delete("/models/{name}/aliases/{alias}")
    def remove_alias(name: str, alias: str) -> dict[str, Any]:
        registry.remove_alias(name, alias)
        return {"removed": f"{name}@{alias}"}

    return r


def import_options(up: Any) -> ImportOptions:
    """Form fields of the upload -> the import's options (`trust` is granted by the caller)."""
    truthy = {"1", "true", "yes", "on"}
    labels: list[str] | None = None
    if "labels" in up.files:
        labels = up.files["labels"].read_text("utf-8").splitlines()
    elif up.one("labels"):
        labels = json_limits.loads(up.one("labels") or "", "the labels field (a JSON list of strings)")
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise InvalidArgument("labels must be a JSON list of strings")
    return ImportOptions(
        format=up.one("format", "auto"),
        description=up.one("description", "") or "",
        tags=dict(parse_tag(t) for t in up.many("tag")),
        aliases=tuple(up.many("alias")),
        labels=labels,
        allow_mismatch=(up.one("allow_mismatch", "") or "").lower() in truthy,
        max_batch_size=parse_version(up.one("max_batch_size")) if up.one("max_batch_size") else None,
        runtime=up.one("runtime") or None,
    )


def run_import(registry: Registry, path: Path, name: str, options: ImportOptions) -> Any:
    from maas import formats

    return formats.import_file(registry, path, name=name, options=options)



