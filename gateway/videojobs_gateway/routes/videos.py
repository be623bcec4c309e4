"""``/api/v1/videos``: submit, follow, fetch, list, cancel, retry and delete jobs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

from videojobs.errors import Problem
from videojobs_gateway import access, bodies, convert
from videojobs_gateway.backend import JobRecord
from videojobs_gateway.deps import BackendDep, IdentityDep
from videojobs_gateway.listing import job_title
from videojobs_gateway.problems import invalid_response, responses
from videojobs_gateway.schemas import (
    Accepted,
    JobList,
    JobSummary,
    ProcessRequest,
    ProgressDoc,
    ResultsDoc,
    SpecRequest,
    StatusDoc,
    StatusWord,
)

PREFIX = "/api/v1/videos"
router = APIRouter(prefix=PREFIX, tags=["videos"])

JobId = Annotated[
    str, Path(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", description="The job id.")
]
COMMON = responses(400, 401, 403, 404, 422, 429)


def links(job_id: str) -> dict[str, str]:
    return {
        "self": f"{PREFIX}/jobs/{job_id}",
        "status": f"{PREFIX}/status/{job_id}",
        "progress": f"{PREFIX}/progress/{job_id}",
        "stream": f"{PREFIX}/progress/{job_id}/stream",
        "results": f"{PREFIX}/results/{job_id}",
    }


def file_url(job_id: str, token: str | None = None) -> Any:
    suffix = f"?{access.PARAM}={token}" if token else ""
    return lambda name: f"{PREFIX}/files/{job_id}/{name}{suffix}"


def summary(job: JobRecord) -> dict[str, Any]:
    progress = convert.progress_document(job.id, job.status)
    source = job.spec.get("source") or {}
    return {
        "job_id": job.id,
        "status": progress["status"],
        "stage": progress["stage"],
        "percent": progress["percent"],
        "segments_done": progress["segments_done"],
        "segments_total": progress["segments_total"],
        "video_url": str(source.get("url", "")),
        "title": job_title(job),
        "created_at": job.created_at,
        "message": job.status.message,
        "links": links(job.id),
    }


_BODY_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/ProcessRequest"},
                        {"$ref": "#/components/schemas/SpecRequest"},
                    ]
                }
            }
        },
    }
}


@router.post(
    "/process",
    status_code=202,
    response_model=Accepted,
    responses={**COMMON, **responses(400, 413)},
    openapi_extra=_BODY_SCHEMA,
    summary="Submit a job",
)
async def process(
    request: Request,
    backend: BackendDep,
    identity: IdentityDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """Submit a video with its transcript and knowledge points (or a full spec): 202 + job id.

    The same ``Idempotency-Key`` again returns the same job (``created: false``)."""
    raw = await request.body()
    settings = request.app.state.settings
    try:
        digest, submission = await bodies.check_in_thread(
            raw,
            backend.default_storage(identity),
            max_depth=settings.max_json_depth,
            max_nodes=settings.max_json_nodes,
            timeout=settings.max_validation_seconds,
        )
    except convert.SubmissionError as exc:
        return invalid_response(request, exc)
    except TimeoutError:
        return invalid_response(
            request,
            convert.SubmissionError(
                Problem("body", f"checking it took over {settings.max_validation_seconds:g} s; "
                        "send a smaller submission")
            ),
        )  # fmt: skip
    job, created = await backend.submit(
        identity, submission, idempotency_key=idempotency_key, digest=digest
    )
    doc = {
        "job_id": job.id,
        "status": convert.rest_status(job.status.phase),
        "created": created,
        "notes": submission.notes,
        "links": links(job.id),
    }
    headers = {"Location": links(job.id)["status"]}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(doc, status_code=202, headers=headers)


@router.get("/status/{job_id}", response_model=StatusDoc, responses=COMMON)
async def status(job_id: JobId, backend: BackendDep, identity: IdentityDep) -> Response:
    """Status word, stage, and the error (category, message) of a failed job."""
    job = backend.get(identity, job_id)
    doc = convert.status_document(job.id, job.status)
    doc["created_at"] = job.created_at
    return JSONResponse(doc)


@router.get("/progress/{job_id}", response_model=ProgressDoc, responses=COMMON)
async def progress(job_id: JobId, backend: BackendDep, identity: IdentityDep) -> Response:
    """Percent, clips done/total and ETA."""
    job = backend.get(identity, job_id)
    return JSONResponse(convert.progress_document(job.id, job.status))


@router.get(
    "/progress/{job_id}/stream",
    responses={
        **COMMON,
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "Server-Sent Events: `progress` events (a ProgressDoc each), then "
            "one `end` event when the job has finished.",
        },
    },
    response_class=StreamingResponse,
)
async def progress_stream(
    request: Request, job_id: JobId, backend: BackendDep, identity: IdentityDep
) -> Response:
    """The progress document as Server-Sent Events, until the job ends."""
    backend.get(identity, job_id)  # 404 before the stream starts
    heartbeat = request.app.state.settings.stream_heartbeat_seconds

    async def events() -> AsyncIterator[str]:
        version = -1
        while True:
            try:
                job = await backend.wait_change(identity, job_id, version, heartbeat)
            except Exception:  # deleted while streaming
                yield "event: end\ndata: {}\n\n"
                return
            if job.version == version:
                yield ": keep-alive\n\n"
                continue
            version = job.version
            doc = convert.progress_document(job.id, job.status)
            yield f"id: {version}\nevent: progress\ndata: {json.dumps(doc)}\n\n"
            if doc["status"] in convert.FINISHED_STATUSES:
                yield f"event: end\ndata: {json.dumps({'status': doc['status']})}\n\n"
                return

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/results/{job_id}", response_model=ResultsDoc, responses=COMMON)
async def results(
    request: Request, job_id: JobId, backend: BackendDep, identity: IdentityDep
) -> Response:
    """Every clip with title, description, knowledge id, start, end and its files.

    When the gateway requires credentials, each file URL carries a short-lived signed
    ``access`` token, so that a browser's ``<video>`` and ``<img>`` can fetch it."""
    job = backend.get(identity, job_id)
    token = None
    settings = request.app.state.settings
    if settings.auth_mode != "none":
        token = access.sign(
            request.app.state.signing_key, identity, job.id, settings.file_url_seconds
        )
    doc = convert.results_document(job.id, job.status, file_url(job.id, token))
    descriptions = convert.descriptions(job.spec)
    for seg in doc["segments"]:
        seg["description"] = descriptions.get(seg["knowledge_id"] or "", "")
    return JSONResponse(doc)


_FILE_RESPONSES = {
    **COMMON,
    **responses(400, 416),
    200: {"content": {"application/octet-stream": {}}, "description": "The file"},
    206: {"content": {"application/octet-stream": {}}, "description": "A byte range"},
    307: {"description": "Redirect to a short-lived presigned URL (S3 storage)"},
}


@router.head(
    "/files/{job_id}/{file_name}",
    operation_id="head_file",
    summary="A published file's headers",
    responses=_FILE_RESPONSES,
    response_class=Response,
)
@router.get("/files/{job_id}/{file_name}", responses=_FILE_RESPONSES, response_class=Response)
async def download(
    job_id: JobId,
    file_name: Annotated[str, Path(max_length=255)],
    backend: BackendDep,
    identity: IdentityDep,
    download: Annotated[
        bool, Query(description="Ask for Content-Disposition: attachment (save, not play).")
    ] = False,
) -> Response:
    """A published file; HTTP Range gives 206 so players can seek. Names that climb are refused.
    ``HEAD`` answers the headers (length, type) without the body.

    A file stored on S3 is a 307 to a short-lived presigned URL (Range works there too)."""
    ref = backend.file(identity, job_id, file_name, download=download)
    if ref.url is not None:
        return RedirectResponse(ref.url, status_code=307, headers={"Cache-Control": "no-store"})
    assert ref.path is not None
    if download:
        return FileResponse(ref.path, media_type=ref.media_type, filename=file_name)
    return FileResponse(ref.path, media_type=ref.media_type, filename=None)


@router.get("/jobs", response_model=JobList, responses={**COMMON, **responses(400)})
async def list_jobs(
    backend: BackendDep,
    identity: IdentityDep,
    status: StatusWord | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The caller's jobs, newest first; ``next_cursor`` fetches the next page."""
    phase = convert.STATUS_TO_PHASE.get(status) if status else None
    if status == "pending":
        phase = "Pending"
    jobs, nxt = backend.list_jobs(identity, phase=phase, limit=limit, cursor=cursor)
    return JSONResponse({"jobs": [summary(j) for j in jobs], "next_cursor": nxt})


@router.get("/jobs/{job_id}", response_model=JobSummary, responses=COMMON)
async def get_job(job_id: JobId, backend: BackendDep, identity: IdentityDep) -> Response:
    """One job's summary (as in the list)."""
    return JSONResponse(summary(backend.get(identity, job_id)))


@router.post(
    "/jobs/{job_id}/cancel", response_model=JobSummary, responses={**COMMON, **responses(409)}
)
async def cancel(job_id: JobId, backend: BackendDep, identity: IdentityDep) -> Response:
    """Stop a queued or running job (409 when it has finished)."""
    return JSONResponse(summary(await backend.cancel(identity, job_id)))


@router.post(
    "/jobs/{job_id}/retry", response_model=JobSummary, responses={**COMMON, **responses(409)}
)
async def retry(job_id: JobId, backend: BackendDep, identity: IdentityDep) -> Response:
    """Run a failed or cancelled job again; clips already published are kept."""
    return JSONResponse(summary(await backend.retry(identity, job_id)))


@router.delete(
    "/jobs/{job_id}",
    status_code=204,
    responses={**COMMON, **responses(409)},
    response_class=Response,
)
async def delete(
    job_id: JobId,
    backend: BackendDep,
    identity: IdentityDep,
    files: bool = False,
) -> Response:
    """Remove a finished job; with ``files=true`` its published files too."""
    await backend.delete(identity, job_id, files=files)
    return Response(status_code=204)


__all__ = ["ProcessRequest", "SpecRequest", "router"]
