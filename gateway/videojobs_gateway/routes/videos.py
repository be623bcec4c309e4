"""``/api/v1/videos``: submit, follow, fetch, list, cancel, retry and delete jobs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.responses import FileResponse, RedirectResponse, Response

from videojobs.errors import Problem
from videojobs_gateway import access, bodies, convert
from videojobs_gateway.backend import Backend, BackendError, JobRecord
from videojobs_gateway.deps import BackendDep, IdentityDep
from videojobs_gateway.listing import job_title
from videojobs_gateway.problems import invalid_response, responses
from videojobs_gateway.schemas import (
    Accepted,
    JobList,
    JobSummary,
    Links,
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


def summary(job: JobRecord, positions: dict[tuple[str, str], int]) -> JobSummary:
    """A job's summary; ``positions`` are the backend's queue positions."""
    progress = convert.progress_document(job.id, job.status)
    source = job.spec.get("source") or {}
    return JobSummary(
        job_id=job.id,
        status=progress["status"],
        stage=progress["stage"],
        percent=progress["percent"],
        segments_done=progress["segments_done"],
        segments_total=progress["segments_total"],
        eta_seconds=progress["eta_seconds"],
        video_url=str(source.get("url", "")),
        title=job_title(job),
        created_at=job.created_at,
        message=job.status.message,
        links=Links(**links(job.id)),
        queue_position=positions.get((job.namespace, job.id)),
        submitted_by=job.owner,
    )


def progress_doc(job: JobRecord, backend: Backend) -> ProgressDoc:
    doc = convert.progress_document(job.id, job.status)
    doc["queue_position"] = backend.queue_positions().get((job.namespace, job.id))
    return ProgressDoc(**doc)


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


def _job_link(operation: str) -> dict[str, Any]:
    return {"operationId": operation, "parameters": {"job_id": "$response.body#/job_id"}}


_JOB_LINKS = {
    "GetStatus": _job_link("status_api_v1_videos_status__job_id__get"),
    "GetProgress": _job_link("progress_api_v1_videos_progress__job_id__get"),
    "GetResults": _job_link("results_api_v1_videos_results__job_id__get"),
    "GetJob": _job_link("get_job_api_v1_videos_jobs__job_id__get"),
    "CancelJob": _job_link("cancel_api_v1_videos_jobs__job_id__cancel_post"),
    "RetryJob": _job_link("retry_api_v1_videos_jobs__job_id__retry_post"),
    "DeleteJob": _job_link("delete_api_v1_videos_jobs__job_id__delete"),
}
"""OpenAPI links from a submitted job to what can be done with it (clients and schemathesis'
stateful tests follow them)."""


@router.post(
    "/process",
    status_code=202,
    response_model=Accepted,
    responses={
        **COMMON,
        **responses(400, 413),
        202: {"description": "Accepted: the job's id, notes and links", "links": _JOB_LINKS},
    },
    openapi_extra=_BODY_SCHEMA,
    summary="Submit a job",
)
async def process(
    request: Request,
    response: Response,
    backend: BackendDep,
    identity: IdentityDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Accepted | Response:
    """Submit a video with its transcript and knowledge points (or a full spec): 202 + job id.

    ``notes`` tells everything the planner changed: each snap to a cue, merge or trim of
    overlapping points, clamp to the video's end, and each knowledge point left without a
    clip, with the reason (``segmentation`` in the body asks for exact times instead).
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
        # answered here, not raised: an exception carrying a huge body's problems through the
        # middleware stack held the event loop for over 100 ms (test_hostile)
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
    response.headers["Location"] = links(job.id)["status"]
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return Accepted(
        job_id=job.id,
        status=convert.rest_status(job.status.phase),
        created=created,
        notes=submission.notes,
        links=Links(**links(job.id)),
    )


@router.get("/status/{job_id}", response_model=StatusDoc, responses=COMMON)
async def status(job_id: JobId, backend: BackendDep, identity: IdentityDep) -> StatusDoc:
    """Status word, stage, a queued job's place in the queue, and the error (category,
    message) of a failed job."""
    job = backend.get(identity, job_id)
    doc = convert.status_document(job.id, job.status)
    doc["created_at"] = job.created_at
    doc["queue_position"] = backend.queue_positions().get((job.namespace, job.id))
    doc["notes"] = convert.job_notes(job.notes, job.status, job.shape)
    doc["submitted_by"] = job.owner
    return StatusDoc(**doc)


@router.get("/progress/{job_id}", response_model=ProgressDoc, responses=COMMON)
async def progress(job_id: JobId, backend: BackendDep, identity: IdentityDep) -> ProgressDoc:
    """Percent, clips done/total, bytes, ETA (once it can be estimated) and a queued job's
    place in the queue."""
    return progress_doc(backend.get(identity, job_id), backend)


def existing_job(job_id: JobId, backend: BackendDep, identity: IdentityDep) -> JobRecord:
    """The job, or 404 before a stream starts."""
    return backend.get(identity, job_id)


@router.get(
    "/progress/{job_id}/stream",
    responses={
        **COMMON,
        200: {
            "description": "Server-Sent Events: `progress` events (a ProgressDoc as JSON each), "
            'then one `end` event (`{"status": ...}`) when the job has finished or was '
            "deleted. On a backend error the server sends a `problem` event and closes the "
            "stream without `end`: the browser's EventSource reconnects."
        },
    },
    response_class=EventSourceResponse,
)
async def progress_stream(
    request: Request,
    job_id: JobId,
    backend: BackendDep,
    identity: IdentityDep,
    _job: Annotated[JobRecord, Depends(existing_job)],
) -> AsyncIterator[ServerSentEvent]:
    """The progress document as Server-Sent Events, until the job ends."""
    heartbeat = request.app.state.settings.stream_heartbeat_seconds
    version = -1
    while True:
        try:
            job = await backend.wait_change(identity, job_id, version, heartbeat)
        except BackendError as exc:
            if exc.status == 404:  # deleted while streaming: the stream has nothing to follow
                yield ServerSentEvent(event="end", data={"status": "deleted"})
            else:  # not an end: the client reconnects and follows on
                problem = {"status": exc.status, "title": exc.title, "detail": exc.detail}
                yield ServerSentEvent(event="problem", data=problem, retry=5000)
            return
        if job.version == version:
            yield ServerSentEvent(comment="keep-alive")
            continue
        version = job.version
        doc = progress_doc(job, backend)
        yield ServerSentEvent(event="progress", id=str(version), data=doc)
        if doc.status in convert.FINISHED_STATUSES:
            yield ServerSentEvent(event="end", data={"status": doc.status})
            return


@router.get("/results/{job_id}", response_model=ResultsDoc, responses=COMMON)
async def results(
    request: Request, job_id: JobId, backend: BackendDep, identity: IdentityDep
) -> ResultsDoc:
    """Every clip published so far with title, description, knowledge id, start, end, its
    files and its note; the planner's notes. Clips are listed (and their files served) as each
    is published, while the job still runs.

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
    doc["notes"] = convert.job_notes(job.notes, job.status, job.shape)
    return ResultsDoc(**doc)


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
    file_name: Annotated[
        str,
        Path(
            max_length=255,
            pattern=r"^[^./\\\x00][^/\\\x00]*$",
            description="A plain file name from the results (no folder, no leading dot).",
        ),
    ],
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
    cursor: Annotated[
        str | None,
        Query(
            max_length=500,
            pattern=r"^[A-Za-z0-9_-]+$",
            description="``next_cursor`` of the previous page (400 for any other value).",
        ),
    ] = None,
    submitted_by: Annotated[
        str | None,
        Query(
            max_length=250,
            description="Only the jobs this identity submitted (``submitted_by`` of a job).",
        ),
    ] = None,
) -> JobList:
    """The caller's jobs, newest first; ``next_cursor`` fetches the next page. Each names who
    submitted it (``submitted_by``); ``submitted_by=`` lists one submitter's jobs."""
    phase = convert.STATUS_TO_PHASE.get(status) if status else None
    if status == "pending":
        phase = "Pending"
    jobs, nxt = backend.list_jobs(
        identity, phase=phase, limit=limit, cursor=cursor, owner=submitted_by
    )
    positions = backend.queue_positions()
    return JobList(jobs=[summary(j, positions) for j in jobs], next_cursor=nxt)


@router.get("/jobs/{job_id}", response_model=JobSummary, responses=COMMON)
async def get_job(job_id: JobId, backend: BackendDep, identity: IdentityDep) -> JobSummary:
    """One job's summary (as in the list)."""
    return summary(backend.get(identity, job_id), backend.queue_positions())


@router.post(
    "/jobs/{job_id}/cancel", response_model=JobSummary, responses={**COMMON, **responses(409)}
)
async def cancel(job_id: JobId, backend: BackendDep, identity: IdentityDep) -> JobSummary:
    """Stop a queued or running job (409 when it has finished)."""
    return summary(await backend.cancel(identity, job_id), backend.queue_positions())


@router.post(
    "/jobs/{job_id}/retry", response_model=JobSummary, responses={**COMMON, **responses(409)}
)
async def retry(job_id: JobId, backend: BackendDep, identity: IdentityDep) -> JobSummary:
    """Run a failed or cancelled job again; clips already published are kept."""
    return summary(await backend.retry(identity, job_id), backend.queue_positions())


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
