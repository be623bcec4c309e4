"""``/healthz`` (the process answers), ``/readyz`` (the backend's checks), ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from videojobs_gateway.deps import BackendDep
from videojobs_gateway.schemas import ReadyDoc

router = APIRouter(tags=["health"])


@router.get("/healthz", responses={200: {"content": {"text/plain": {}}}})
async def healthz() -> PlainTextResponse:
    """Liveness: the event loop answers."""
    return PlainTextResponse("ok\n")


@router.get("/readyz", response_model=ReadyDoc, responses={503: {"model": ReadyDoc}})
async def readyz(backend: BackendDep) -> Response:
    """Readiness: the store, storage writable with free space, ffmpeg where jobs run."""
    checks = await backend.checks()
    ready = all(c.ok for c in checks)
    doc = {
        "ready": ready,
        "backend": backend.kind,
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks],
    }
    return JSONResponse(doc, status_code=200 if ready else 503)


@router.get("/metrics", responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request) -> Response:
    """Prometheus metrics: requests, latencies, jobs by status."""
    body, content_type = request.app.state.metrics.render()
    return Response(body, media_type=content_type)
