"""`/docs` served offline: the Swagger UI page with its script and styles from the installed
`swagger-ui-bundle` package instead of FastAPI's default CDN, which a machine without internet cannot reach."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS = "/docs/assets"


def install(app: FastAPI) -> None:
    """Serve `/docs` and its assets; call on an app made with `docs_url=None, redoc_url=None`."""
    import swagger_ui_bundle

    _document_infer(app)
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )


INFER_PATHS = ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer")


def _document_infer(app: FastAPI) -> None:
    """The infer route is raw ASGI behind the edge, not a FastAPI route: list it in the schema by hand."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for path in INFER_PATHS:
                params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                          for n in ("name", "version") if "{" + n + "}" in path]
                schema.setdefault("paths", {})[path] = {"post": {
                    "tags": ["v2"], "summary": "Infer (KServe v2; JSON, or the binary tensor extension)",
                    "operationId": "infer" + ("_version" if "version" in path else ""),
                    "parameters": params,
                    "requestBody": {"required": True, "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                    }},
                    "responses": {"200": {"description": "The outputs"}, "400": {"description": "Bad input"}},
                }}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
