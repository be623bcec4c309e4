"""The FastAPI app: routers per resource, a backend, an authenticator, limits."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import HTMLResponse

from videojobs_gateway import problems
from videojobs_gateway.auth import Authenticator, Reviewer, build_authenticator
from videojobs_gateway.backend import Backend
from videojobs_gateway.limits import FailureLimiter, RateLimiter
from videojobs_gateway.metrics import Metrics
from videojobs_gateway.middleware import GatewayMiddleware
from videojobs_gateway.routes import events, health, plans, videos
from videojobs_gateway.schemas import ProcessRequest, SpecRequest
from videojobs_gateway.settings import GatewaySettings


def create_app(
    backend: Backend,
    settings: GatewaySettings | None = None,
    *,
    authenticator: Authenticator | None = None,
    reviewer: Reviewer | None = None,
    console: bool = True,
) -> FastAPI:
    """The gateway over ``backend``; the backend is started and stopped with the app."""
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await backend.start()
        try:
            yield
        finally:
            await backend.stop()
            close = getattr(reviewer, "close", None)
            if close is not None:
                await close()

    # /docs (Swagger UI) and /redoc with their scripts served by the app (fastapi-offline
    # ships them under /static-offline-docs): they work without the internet
    app = FastAPIOffline(
        redoc_url=None,
        title="videojobs gateway",
        version="1",
        description="Submit a video with its transcript and knowledge points; get named clips.",
        lifespan=lifespan,
    )
    _redoc(app)
    app.state.backend = backend
    app.state.settings = settings
    app.state.auth = authenticator or build_authenticator(settings, reviewer)
    app.state.signing_key = (
        settings.signing_key.encode() if settings.signing_key else secrets.token_bytes(32)
    )
    app.state.limiter = RateLimiter(settings.rate_per_second, settings.rate_burst)
    app.state.failures = FailureLimiter(  # client mode: failed TokenReviews per client
        settings.unauthenticated_rate_per_second,
        max(1, int(settings.unauthenticated_rate_per_second * 2)),
    )
    app.state.metrics = Metrics(backend.counts)
    problems.install(app)
    app.include_router(videos.router)
    app.include_router(events.router)
    app.include_router(plans.router)
    app.include_router(health.router)
    if console:
        from videojobs_gateway.routes import console as console_routes

        app.include_router(console_routes.router)
        console_routes.mount_static(app)
    _middleware(app, settings)
    _openapi(app, settings)
    return app


def _middleware(app: FastAPI, settings: GatewaySettings) -> None:
    """CORS (when origins are configured), then the gateway's own middleware outermost."""
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Api-Key"],
            expose_headers=["Location", "Retry-After", "X-Request-ID"],
        )
    app.add_middleware(
        GatewayMiddleware,
        metrics=app.state.metrics,
        max_body_bytes=settings.max_body_bytes,
        allowed_hosts=settings.allowed_hosts,
        cors_origins=settings.cors_origins,
        trusted_proxies=settings.trusted_proxies,
        request_timeout=settings.request_timeout_seconds,
    )


def _openapi(app: FastAPI, settings: GatewaySettings) -> None:
    """The OpenAPI document, built once: the request bodies' schemas, problem responses and
    the security scheme of the auth mode."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes,
            )  # fmt: skip
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (ProcessRequest, SpecRequest):
                doc = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(doc.pop("$defs", {}))
                components[model.__name__] = doc
            _problem_content(schema)
            _security(schema, settings)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _redoc(app: FastAPI) -> None:
    """``/redoc`` with ReDoc's script from the app; its footer's logo (on a CDN) is kept from
    loading by the page's Content-Security-Policy, so nothing leaves the machine."""

    @app.get("/redoc", include_in_schema=False)
    async def redoc_html(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=app.title + " - ReDoc",
            redoc_js_url=f"{root}/static-offline-docs/redoc.standalone.js",
            redoc_favicon_url=f"{root}/static-offline-docs/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = "img-src 'self' data:"
        return page


_SCHEMES: dict[str, dict[str, dict[str, Any]]] = {
    "apikey": {
        "apiKeyBearer": {"type": "http", "scheme": "bearer",
                         "description": "An API key as Authorization: Bearer <key>."},
        "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Api-Key",
                         "description": "An API key in X-Api-Key."},
    },
    "client": {
        "kubernetesToken": {"type": "http", "scheme": "bearer",
                            "description": "The caller's Kubernetes bearer token (checked with "
                            "a TokenReview)."},
    },
}  # fmt: skip
"""The client-side schemes of each auth mode (none has none; header mode's identity comes
from the authenticating proxy, not from the client)."""


def _security(schema: dict[str, Any], settings: GatewaySettings) -> None:
    """Declare the auth mode's schemes, required on every API route (and /metrics unless
    public): generated clients get the auth parameter, Swagger UI its Authorize button."""
    schemes = _SCHEMES.get(settings.auth_mode)
    if not schemes:
        return
    schema["components"]["securitySchemes"] = schemes
    either: list[dict[str, list[str]]] = [{name: []} for name in schemes]
    for path, ops in schema.get("paths", {}).items():
        guarded = path.startswith("/api/") or (path == "/metrics" and not settings.metrics_public)
        if guarded:
            for op in ops.values():
                op["security"] = either


def _problem_content(schema: dict[str, Any]) -> None:
    """Error responses are ``application/problem+json`` only."""
    ref = {"$ref": "#/components/schemas/ProblemDoc"}
    for path in schema.get("paths", {}).values():
        for op in path.values():
            for code, response in op.get("responses", {}).items():
                if code.startswith(("4", "5")) and code != "503":
                    response["content"] = {problems.PROBLEM: {"schema": ref}}
