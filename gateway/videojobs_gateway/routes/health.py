"""``/healthz`` and ``/health`` (the process answers), ``/readyz``, ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import PlainTextResponse, Response

from videojobs_gateway.deps import BackendDep, get_identity
from videojobs_gateway.problems import ProblemError, responses
from videojobs_gateway.schemas import CheckDoc, ReadyDoc


async def _caller_known(request: Request) -> bool:
    """True in auth mode none, or when the request authenticates (details are for callers)."""
    if request.app.state.settings.auth_mode == "none":
        return True
    try:
        await get_identity(request, None)
    except ProblemError:
        return False
    return True


router = APIRouter(tags=["health"])


@router.get("/healthz", responses={200: {"content": {"text/plain": {}}}})
@router.get("/health", responses={200: {"content": {"text/plain": {}}}})
async def healthz() -> PlainTextResponse:
    """Liveness: the event loop answers (``/health`` is the same answer)."""
    return PlainTextResponse("ok\n")


@router.get("/readyz", response_model=ReadyDoc, responses={503: {"model": ReadyDoc}})
async def readyz(request: Request, response: Response, backend: BackendDep) -> ReadyDoc:
    """Readiness: the store, storage writable with free space, ffmpeg where jobs run.

    Without credentials (in every auth mode but none) only the names and verdicts of the
    checks are shown, not their details (paths, free space, buckets)."""
    checks = await backend.checks()
    ready = all(c.ok for c in checks)
    details = await _caller_known(request)
    response.status_code = 200 if ready else 503
    return ReadyDoc(
        ready=ready,
        backend=backend.kind,
        checks=[CheckDoc(name=c.name, ok=c.ok, detail=c.detail if details else "") for c in checks],
    )


@router.get(
    "/metrics", responses={200: {"content": {"text/plain": {}}}, **responses(401, 403, 429)}
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics: requests, latencies, jobs by status (of every tenant: so, unless
    ``metrics_public``, only for an authenticated caller in modes other than none)."""
    if not request.app.state.settings.metrics_public:
        if request.app.state.settings.auth_mode != "none":
            await get_identity(request, None)
    body, content_type = request.app.state.metrics.render()
    return Response(body, media_type=content_type)
