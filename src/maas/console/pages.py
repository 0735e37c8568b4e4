"""The console's pages: each handler reads through the core services (registry, traffic, jobs, keys, the
metrics history) and renders a Jinja2 template. Nothing here changes state except signing in and out; the
pages' controls call the control and inference APIs from the browser."""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from maas import __version__
from maas.console import gate
from maas.console.reports import is_number, shared_evaluations, version_reports
from maas.console.sessions import COOKIE, SessionStore
from maas.errors import MaasError, NotFound, PermissionDenied, Unauthenticated
from maas.jobs import JobRunner
from maas.monitor.history import MetricsHistory
from maas.registry import ModelVersion, Registry
from maas.security import Authorizer, KeyStore, Principal
from maas.security.authorizer import ANONYMOUS
from maas.security.scopes import Scope as KeyScope
from maas.server.auth import principal_of
from maas.server.errors import status_of
from maas.traffic import TrafficService
from maas.types import check_name

STATIC_URL = gate.STATIC.rstrip("/")
MODELS_PER_PAGE = 50
VERSIONS_PER_PAGE = 25
LINEAGE_LIMIT = 200  # versions drawn in the lineage graph (the newest)


@dataclass
class Console:
    registry: Registry
    dataplane: Any
    jobs: JobRunner
    keys: KeyStore
    authorizer: Authorizer
    history: MetricsHistory
    sessions: SessionStore


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=512)


def environment() -> jinja2.Environment:
    folder = resources.files("maas.console") / "templates"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["size"] = human_size
    return env


def human_size(n: int | float | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def key_metrics(v: ModelVersion) -> dict[str, Any]:
    """The scalar metrics of a version, evaluation reports' metrics named by their data set."""
    out: dict[str, Any] = {}
    for name, value in v.metrics.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = value
        elif name.startswith("eval:") and isinstance(value, dict):
            data = str(value.get("dataset", name[5:]))
            for m, x in (value.get("metrics") or {}).items():
                if isinstance(x, int | float) and not isinstance(x, bool):
                    out[f"{m} ({data})"] = x
    return out


def latency_ms(v: ModelVersion) -> float | None:
    """The p50 latency at batch 1 of the newest evaluation that measured it, else of the optimize report."""
    for name, value in reversed(list(v.metrics.items())):
        timing = value.get("latency") if name.startswith("eval:") and isinstance(value, dict) else None
        if isinstance(timing, dict):
            for run in timing.values():
                if isinstance(run, dict) and run.get("batch_size") == 1 and is_number(run.get("p50_ms")):
                    return float(run["p50_ms"])
    child = (v.metrics.get("optimize") or {}).get("child") if isinstance(v.metrics.get("optimize"), dict) else None
    if isinstance(child, dict) and is_number(child.get("latency_p50_ms_b1")):
        return float(child["latency_p50_ms_b1"])
    return None


def size_of(v: ModelVersion) -> int:
    return sum(a.size for a in v.artifacts)


def signature_rows(v: ModelVersion) -> list[tuple[str, str, str, str]]:
    if v.signature is None:
        return []
    return [(kind, t.name, t.datatype, str(list(t.shape))) for kind, specs in
            (("input", v.signature.inputs), ("output", v.signature.outputs)) for t in specs]


def page_of(items: list[Any], page: int, per_page: int) -> tuple[list[Any], int, int]:
    pages = max(1, math.ceil(len(items) / per_page))
    page = min(max(1, page), pages)
    return items[(page - 1) * per_page: page * per_page], page, pages


def router(console: Console) -> APIRouter:
    r = APIRouter(prefix=gate.PREFIX, include_in_schema=False)
    env = environment()
    traffic = TrafficService(console.registry)
    registry = console.registry

    def who(request: Request) -> Principal:
        principal = principal_of(request.scope)
        return principal if principal is not None else ANONYMOUS

    def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        principal = who(request)
        session = request.scope.get("state", {}).get("console_session")
        html = env.get_template(template).render(
            principal=principal, signed_in=session is not None,
            can_write=principal.scope.allows(KeyScope.WRITE), can_admin=principal.scope.allows(KeyScope.ADMIN),
            csrf=session.csrf if session is not None else "", version=__version__, path=request.url.path,
            **values)
        return HTMLResponse(html, status, headers={"cache-control": "no-store"})

    def page(route: Callable[..., Response]) -> Callable[..., Response]:
        """A refusal (unknown model or version, bad name, out of the key's models) as a page, not JSON."""

        @functools.wraps(route)
        def wrapped(request: Request, *args: Any, **kwargs: Any) -> Response:
            try:
                return route(request, *args, **kwargs)
            except MaasError as exc:
                return render(request, "error.html", status_of(exc), message=exc.message)

        return wrapped

    def visible(request: Request, name: str) -> None:
        if not who(request).allows_model(name):
            raise PermissionDenied(f"your key may not see model {name[:64]!r}")

    def model_names(request: Request) -> list[str]:
        """The registry's models that the caller's key may see (the pickers of every page)."""
        principal = who(request)
        return [m.name for m in registry.list_models() if principal.allows_model(m.name)]

    def readiness(name: str) -> list[int]:
        repo = getattr(console.dataplane, "repository", None)
        return [v.number for v in repo.loaded(name)] if repo is not None else []

    # --- signing in -------------------------------------------------------------------------------------
    @r.get("/login")
    def login_page(request: Request, next: str = "/console/") -> Response:
        if not console.authorizer.required:
            return RedirectResponse("/console/", 303)
        return render(request, "login.html", next=next if next.startswith("/console") else "/console/")

    @r.post("/login")
    async def login(body: SignIn, request: Request) -> Response:
        try:
            await console.authorizer.ready_for(body.token.strip())  # a key made a moment ago by `maas keys create`
            principal = await run_in_threadpool(console.authorizer.authenticate, body.token.strip())
        except Unauthenticated as exc:
            return JSONResponse({"error": exc.message}, 401)
        if not principal.scope.allows(KeyScope.READ):
            return JSONResponse({"error": f"the console needs a key with scope 'read' or more; this key has "
                                          f"{principal.scope.value!r}"}, 403)
        sid, _ = await run_in_threadpool(console.sessions.create, body.token.strip(), principal.key_id)
        response = JSONResponse({"signed_in": principal.actor, "scope": principal.scope.value})
        response.headers["set-cookie"] = gate.set_cookie(sid, request.url.scheme == "https")
        return response

    @r.post("/logout")
    def logout(request: Request) -> Response:
        sid = request.cookies.get(COOKIE)
        if sid:
            console.sessions.drop(sid)
        response = JSONResponse({"signed_out": True})
        response.headers["set-cookie"] = gate.clear_cookie(request.url.scheme == "https").decode()
        return response

    # --- models -----------------------------------------------------------------------------------------
    @r.get("/")
    @page
    def models(request: Request, q: str = "", page: int = 1) -> Response:
        principal = who(request)
        found = [m for m in registry.list_models() if principal.allows_model(m.name)
                 and (not q or q.lower() in m.name.lower() or q.lower() in m.description.lower())]
        shown, page, pages = page_of(found, page, MODELS_PER_PAGE)
        rows = []
        for m in shown:
            split = traffic.get_split(m.name)
            rows.append({"model": m, "split": split.to_dict()["arms"] if split else None,
                         "ready": readiness(m.name)})
        return render(request, "models.html", rows=rows, q=q, page=page, pages=pages, total=len(found))

    @r.get("/models/{name}")
    @page
    def model(request: Request, name: str, page: int = 1, a: int | None = None, b: int | None = None) -> Response:
        check_name(name)
        visible(request, name)
        m = registry.get_model(name)
        versions = sorted(registry.list_versions(name), key=lambda v: v.version, reverse=True)
        shown, page, pages = page_of(versions, page, VERSIONS_PER_PAGE)
        lineage = [{"version": v.version, "parent": v.lineage.parent, "transform": v.lineage.transform,
                    "params": v.lineage.params, "state": str(v.state), "aliases": list(v.aliases)}
                   for v in versions[:LINEAGE_LIMIT]]
        by_number = {v.version: v for v in versions}
        compare = None
        if a is not None and b is not None:
            if a not in by_number or b not in by_number:
                raise NotFound(f"model {name} has no version {a if a not in by_number else b}")
            compare = compare_versions(by_number[a], by_number[b])
        rows = [{"v": v, "size": size_of(v), "metrics": key_metrics(v)} for v in shown]
        return render(request, "model.html", model=m, rows=rows, page=page, pages=pages, lineage=lineage,
                      numbers=[v.version for v in versions], compare=compare, a=a, b=b,
                      ready=readiness(name), total=len(versions))

    @r.get("/models/{name}/versions/{number}")
    @page
    def version(request: Request, name: str, number: int) -> Response:
        check_name(name)
        visible(request, name)
        v = registry.get(f"{name}:{number}")
        m = registry.get_model(name)
        return render(request, "version.html", v=v, model=m, signature=signature_rows(v), size=size_of(v),
                      metrics={k: x for k, x in v.metrics.items() if is_number(x)},
                      reports=version_reports(v.metrics), ready=number in readiness(name))

    # --- traffic and rollouts ---------------------------------------------------------------------------
    @r.get("/traffic")
    @page
    def traffic_page(request: Request, model: str = "") -> Response:
        names = model_names(request)
        model = model or (names[0] if names else "")
        values: dict[str, Any] = {"names": names, "model": model, "described": None, "rollout": None,
                                  "versions": []}
        if model:
            check_name(model)
            visible(request, model)
            values["described"] = traffic.describe(model)
            values["versions"] = [v.version for v in registry.list_versions(model) if str(v.state) == "ready"]
            with contextlib.suppress(NotFound):  # no rollout yet
                values["rollout"] = traffic.get_rollout(model).to_dict()
        return render(request, "traffic.html", **values)

    # --- monitoring -------------------------------------------------------------------------------------
    @r.get("/monitoring")
    @page
    def monitoring(request: Request, model: str = "") -> Response:
        principal = who(request)
        names = model_names(request)
        served = [n for n in console.history.models() if ":" not in n and principal.allows_model(n)]
        model = model or (served[0] if served else (names[0] if names else ""))
        if model:
            check_name(model)
            visible(request, model)
        return render(request, "monitoring.html", names=names, model=model,
                      interval_s=console.history.interval_s)

    @r.get("/monitoring/data")
    def monitoring_data(request: Request, model: str) -> dict[str, Any]:
        check_name(model)
        visible(request, model)
        return {"model": model, "series": console.history.series(model),
                "versions": {k.split(":", 1)[1]: console.history.series(k)[-1:]
                             for k in console.history.models() if k.startswith(model + ":")}}

    # --- jobs -------------------------------------------------------------------------------------------
    @r.get("/jobs")
    def jobs(request: Request) -> Response:
        return render(request, "jobs.html", jobs=console.jobs.store.list(None, 50),
                      kinds=sorted(console.jobs.handlers), names=model_names(request))

    @r.get("/jobs/table")
    def jobs_table(request: Request) -> Response:
        return render(request, "jobs_table.html", jobs=console.jobs.store.list(None, 50))

    @r.get("/jobs/{job_id}")
    @page
    def job(request: Request, job_id: str, fragment: bool = False) -> Response:
        j = console.jobs.store.get(job_id)
        return render(request, "job_detail.html" if fragment else "job.html", job=j,
                      log="\n".join(j.log.splitlines()[-200:]), made=made_version(j.result))

    # --- playground -------------------------------------------------------------------------------------
    @r.get("/playground")
    @page
    def playground(request: Request, model: str = "") -> Response:
        names = model_names(request)
        model = model or (names[0] if names else "")
        v = None
        if model:
            check_name(model)
            visible(request, model)
            v = registry.get(model)
        return render(request, "playground.html", names=names, model=model, v=v,
                      kind=playground_kind(v) if v is not None else "",
                      inputs=v.signature.to_dict()["inputs"] if v is not None and v.signature else [],
                      labels=list(v.config.get("labels") or []) if v is not None else [])

    # --- keys -------------------------------------------------------------------------------------------
    @r.get("/keys")
    def keys(request: Request) -> Response:
        return render(request, "keys.html", keys=console.keys.list(), required=console.authorizer.required)

    return r


def made_version(result: dict[str, Any] | None) -> tuple[str, int] | None:
    """The version a finished job created (optimize and import give it whole, train gives its ref)."""
    if not isinstance(result, dict):
        return None
    made = result.get("version")
    if isinstance(made, dict) and isinstance(made.get("model"), str) and isinstance(made.get("version"), int):
        return made["model"], made["version"]
    ref = result.get("ref")
    if isinstance(ref, str) and ":" in ref and ref.rsplit(":", 1)[1].isdigit():
        name, number = ref.rsplit(":", 1)
        return name, int(number)
    return None


def playground_kind(v: ModelVersion) -> str:
    """How the playground asks for input: chat (a text-generation model, over the OpenAI routes), embedding,
    image (a canvas or an upload, for one 4-d image input) or tabular (a form from the signature)."""
    kind = v.config.get("kind")
    if kind == "text-generation":
        return "chat"
    if kind == "embedding":
        return "embedding"
    if v.signature is not None and len(v.signature.inputs) == 1 and len(v.signature.inputs[0].shape) == 4:
        return "image"
    return "tabular"


def compare_versions(a: ModelVersion, b: ModelVersion) -> dict[str, Any]:
    """Two versions side by side: metrics, size, latency, signature and lineage."""
    ma, mb = key_metrics(a), key_metrics(b)
    sa, sb = set(signature_rows(a)), set(signature_rows(b))
    return {
        "a": a, "b": b,
        "metrics": [(k, ma.get(k), mb.get(k)) for k in sorted(set(ma) | set(mb))],
        "size": (size_of(a), size_of(b)), "latency": (latency_ms(a), latency_ms(b)),
        "signature_same": sa == sb, "only_a": sorted(sa - sb), "only_b": sorted(sb - sa),
        "reports": (version_reports(a.metrics), version_reports(b.metrics)),
        "shared": shared_evaluations(a.metrics, b.metrics),
    }

