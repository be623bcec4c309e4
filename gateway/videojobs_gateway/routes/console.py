"""The web console at ``/``: two static pages and a small script, no external network.

``/`` lists the caller's jobs with live progress bars and has the submit form; ``/console/jobs/
{id}`` shows one job: the lecture's timeline (cues, knowledge points, clips with live progress),
its clips with thumbnails, an in-page player, downloads, cancel and retry; ``/console/plan``
previews a plan on the same timeline, lets the user adjust it, and runs it.
Everything the pages show comes from the same ``/api/v1/videos`` endpoints.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from starlette.responses import FileResponse
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent.parent / "static"
router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html")


@router.get("/console/jobs/{job_id}")
async def job_page(job_id: str) -> FileResponse:
    return FileResponse(STATIC / "job.html", media_type="text/html")


@router.get("/console/plan")
async def plan_page() -> FileResponse:
    return FileResponse(STATIC / "plan.html", media_type="text/html")


def mount_static(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
