"""``GET /api/v1/videos/events``: the caller's whole job list as one Server-Sent Events stream.

A browser opens at most six connections per host: one stream per unfinished job starved every
other request once six jobs waited (issue 26). This stream serves the whole list: a
``snapshot`` event (the first page, as ``GET /jobs`` answers it), then one ``job`` event per
created or changed job (``new: true`` for a job created since) and one ``deleted`` event per
job that went away, for the jobs the caller may see, on both backends.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response, StreamingResponse

from videojobs_gateway.backend import Backend, BackendError, Identity, JobRecord, encode_cursor
from videojobs_gateway.deps import BackendDep, IdentityDep
from videojobs_gateway.listing import Changes, ListDiff, all_jobs
from videojobs_gateway.problems import responses
from videojobs_gateway.routes.videos import PREFIX, summary
from videojobs_gateway.schemas import StatusWord

router = APIRouter(prefix=PREFIX, tags=["videos"])


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def row(job: JobRecord, **extra: Any) -> dict[str, Any]:
    return {**summary(job), **extra}


def snapshot(jobs: list[JobRecord], status: str | None, limit: int) -> dict[str, Any]:
    """The first ``limit`` jobs (of ``status``) and the cursor of the next page (``GET /jobs``)."""
    shown = [row(j) for j in jobs]
    if status is not None:
        shown = [j for j in shown if j["status"] == status]
    nxt = None
    if len(shown) > limit:
        last = next(j for j in jobs if j.id == shown[limit - 1]["job_id"])
        nxt = encode_cursor(last.seq, last.id)
    return {"jobs": shown[:limit], "next_cursor": nxt}


def change_events(changes: Changes) -> list[str]:
    out = [sse("job", row(j, new=True)) for j in changes.new]
    out += [sse("job", row(j, new=False)) for j in changes.changed]
    out += [sse("deleted", {"job_id": jid}) for jid in changes.gone]
    return out


async def follow(
    backend: Backend, identity: Identity, jobs: list[JobRecord], heartbeat: float
) -> AsyncIterator[str]:
    """The change events after the snapshot of ``jobs``, a comment at each quiet heartbeat."""
    diff = ListDiff()
    diff.reset(jobs)
    while True:
        await backend.feed.wait(identity.namespace, heartbeat)
        try:
            changes = diff.update(all_jobs(backend, identity))
        except BackendError as exc:  # the cluster cache is relisting: say so, try again
            yield sse("problem", {"status": exc.status, "detail": exc.detail})
            continue
        events = change_events(changes)
        for event in events:
            yield event
        if not events:
            yield ": keep-alive\n\n"


@router.get(
    "/events",
    responses={
        **responses(400, 401, 403, 422, 429),
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "Server-Sent Events: one `snapshot` (`{jobs, next_cursor}` as "
            "`GET /jobs`), then `job` events (a JobSummary with `new`) and `deleted` "
            "events (`{job_id}`).",
        },
    },
    response_class=StreamingResponse,
    include_in_schema=False,
)
async def job_events(
    request: Request,
    backend: BackendDep,
    identity: IdentityDep,
    status: StatusWord | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """The caller's job list, live: one stream for all of their jobs (the console's list)."""
    jobs = all_jobs(backend, identity)  # a refusal (401, 403, 503) before the stream starts
    heartbeat = request.app.state.settings.stream_heartbeat_seconds
    first = sse("snapshot", snapshot(jobs, status, limit))

    async def events() -> AsyncIterator[str]:
        yield first
        async for event in follow(backend, identity, jobs, heartbeat):
            yield event

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
