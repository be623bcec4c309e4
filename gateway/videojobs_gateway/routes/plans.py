"""``/api/v1/videos/plan``: the plan of a submission before it runs, and of a job.

``POST /plan`` takes the body ``POST /process`` takes and answers what would be cut (the
console's plan preview draws it on a timeline, lets the user adjust it, then submits the
adjusted plan as explicit segments). Nothing is stored and nothing runs. The body is checked
exactly as a submission is: same authentication and rate limit, same size, depth and node
bounds, in a worker thread with the same time limit.

``GET /plan/{job_id}`` is the same document for a submitted job (the console's job page).
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from videojobs.errors import Problem
from videojobs_gateway import bodies, convert
from videojobs_gateway.deps import BackendDep, IdentityDep
from videojobs_gateway.planview import PlanDoc, plan_document
from videojobs_gateway.problems import invalid_response, responses
from videojobs_gateway.routes.videos import _BODY_SCHEMA, COMMON, PREFIX, JobId

router = APIRouter(prefix=PREFIX, tags=["videos"])

_NO_TRANSCRIPT = (
    "the plan needs what the job fetches when it runs (a transcript at a URL, or the source's "
    "captions or chapters); a preview fetches nothing: send the transcript inline"
)


def _document(submission: convert.Submission) -> PlanDoc:
    loaded = submission.loaded
    if loaded is None or loaded.plan is None:
        raise convert.SubmissionError(
            Problem("transcript" if submission.shape == "rest" else "spec.transcript",
                    _NO_TRANSCRIPT)
        )  # fmt: skip
    rename = convert._rest_note if submission.shape == "rest" else str
    return plan_document(loaded, submission.notes, rename)


def _plan(raw: bytes, storage: dict[str, Any], max_depth: int, max_nodes: int) -> PlanDoc:
    """Blocking: parse, check and plan (run it in a thread)."""
    _, submission = bodies.check(raw, storage, max_depth=max_depth, max_nodes=max_nodes)
    return _document(submission)


def _too_slow(request: Request, seconds: float) -> Response:
    return invalid_response(
        request,
        convert.SubmissionError(
            Problem("body", f"checking it took over {seconds:g} s; send a smaller submission")
        ),
    )


async def _in_thread(request: Request, work: Any) -> Response:
    """``work()`` in a worker thread (the submissions' limiter), bounded in time; its
    :class:`PlanDoc` as JSON, or the problem."""
    seconds = request.app.state.settings.max_validation_seconds
    try:
        with anyio.fail_after(seconds):
            doc = await anyio.to_thread.run_sync(
                work, limiter=bodies.limiter(), abandon_on_cancel=True
            )
    except convert.SubmissionError as exc:
        return invalid_response(request, exc)
    except TimeoutError:
        return _too_slow(request, seconds)
    return JSONResponse(doc.model_dump(mode="json"))


@router.post(
    "/plan",
    response_model=PlanDoc,
    responses={**COMMON, **responses(400, 413)},
    openapi_extra=_BODY_SCHEMA,
    summary="Plan a submission without running it",
)
async def plan(request: Request, backend: BackendDep, identity: IdentityDep) -> Response:
    """The clips a submission would give (times, titles, stems; confidence for
    ``segmentation.auto``), every knowledge point with what the planner did to it (snapped,
    merged, trimmed, clamped, dropped) and why, and the transcript's cues (at most 5,000).

    The body is ``POST /process``'s. Nothing is stored or run; the source is not probed, so
    its length is unknown and no end is clamped to it."""
    raw = await request.body()
    settings = request.app.state.settings
    storage = backend.default_storage(identity)
    return await _in_thread(
        request,
        lambda: _plan(raw, storage, settings.max_json_depth, settings.max_json_nodes),
    )


@router.get("/plan/{job_id}", response_model=PlanDoc, responses={**COMMON, **responses(422)})
async def job_plan(
    request: Request, job_id: JobId, backend: BackendDep, identity: IdentityDep
) -> Response:
    """The plan document of a submitted job (its spec planned again, as ``POST /plan``
    would). A job whose transcript is at a URL has no preview: ``422``."""
    job = backend.get(identity, job_id)
    spec = dict(job.spec)

    def work() -> PlanDoc:
        try:
            loaded = convert.check_spec(spec)
        except convert.InvalidSpec as exc:
            raise convert.SubmissionError(exc.problems) from None
        notes = convert.loaded_notes(loaded)
        return _document(convert.Submission(spec=spec, shape="spec", notes=notes, loaded=loaded))

    return await _in_thread(request, work)
