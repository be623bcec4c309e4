"""The REST documents, as pydantic models: they feed the OpenAPI spec at ``/openapi.json``.

Routes return these models (built from :mod:`videojobs_gateway.convert`'s plain dicts); FastAPI
serializes them, and schemathesis checks every response against them. The request models are
documentation only: the body is checked by the code behind ``videojobs validate``, so its
messages are the CLI's.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from videojobs.models.spec import OutputFormat

StatusWord = Literal["pending", "queued", "processing", "completed", "failed", "cancelled"]
TimeValue = float | str


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TranscriptEntry(_Doc):
    start_time: TimeValue = Field(description="Seconds (a number) or a time string.")
    end_time: TimeValue = Field(description="Seconds (a number) or a time string.")
    text: str


class KnowledgePointIn(_Doc):
    knowledge_id: str = Field(description="Unique id; used in file names.")
    title: str
    description: str = ""
    start_time: TimeValue | None = Field(default=None, description="Or give a quote.")
    end_time: TimeValue | None = Field(
        default=None, description="Default: the next knowledge point's start, or the end."
    )
    quote: str | None = Field(
        default=None, description="Words spoken at the start (instead of start_time)."
    )


class OutputIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    formats: list[OutputFormat] = Field(
        default=["mp4"], description="mp4, webm, auto (like the source), m4a, mp3, opus, flac, wav"
    )
    precision: Literal["copy", "accurate", "smart"] = "smart"


class ProcessRequest(_Doc):
    """The REST body: a video URL, its timed transcript (optional when every knowledge point
    has its times) and the knowledge points to cut."""

    video_url: str
    transcript: list[TranscriptEntry] | str | None = Field(
        default=None,
        description="Timed entries, or the text of a WebVTT, SRT (or other known) transcript; "
        "may be left out when every knowledge point has start_time and end_time.",
    )
    knowledge_points: list[KnowledgePointIn] = Field(default_factory=list)
    output: OutputIn | None = None
    segmentation: dict[str, Any] | None = Field(
        default=None,
        description="The resource's spec.segmentation (camelCase): e.g. "
        '``{"snapToCues": false}`` keeps the times as given, ``{"overlap": "allow"}`` keeps '
        "overlapping points as separate clips (also trim, reject; default merge).",
    )
    name: str | None = Field(default=None, description="Job id prefix (a DNS label).")


class SpecRequest(_Doc):
    """A ``VideoProcessingJob`` spec (camelCase, as in ``docs/resource.md``)."""

    spec: dict[str, Any]
    name: str | None = None


class Links(_Doc):
    self: str
    status: str
    progress: str
    stream: str
    results: str


class Accepted(_Doc):
    job_id: str
    status: StatusWord
    created: bool = Field(description="False when an Idempotency-Key returned an earlier job.")
    notes: list[str] = Field(default_factory=list)
    links: Links


class ErrorDoc(_Doc):
    category: str
    reason: str
    message: str
    permanent: bool


class StatusDoc(_Doc):
    job_id: str
    status: StatusWord
    stage: str | None
    message: str | None
    error: ErrorDoc | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    queue_position: int | None = Field(
        default=None,
        description="A queued job's place in the queue (1: starts next; jobs start first come, "
        "first served); null unless queued.",
    )
    notes: list[str] = Field(
        default_factory=list,
        description="What the planner changed, at submission and once the run knows the "
        "source's real duration (a clip clamped to it): every snap, merge, trim, clamp or "
        "dropped knowledge point, and why (as in /results).",
    )
    submitted_by: str | None = Field(
        default=None,
        description="Who submitted the job: the authenticated identity (API key name, or the "
        "user TokenReview named), as the gateway recorded it; null when unknown (not "
        "submitted through the gateway).",
    )


class ProgressDoc(_Doc):
    job_id: str
    status: StatusWord
    stage: str | None
    percent: int = Field(description="0-100; moves as the source downloads and each clip is cut.")
    segments_done: int = Field(description="Clips published so far (listed in the results).")
    segments_total: int = Field(description="Clips in the plan (0 until it is known).")
    eta_seconds: int | None = Field(
        description="Estimated seconds left; null until it can be estimated."
    )
    message: str
    bytes_done: int | None = Field(default=None, description="Source bytes downloaded so far.")
    bytes_total: int | None = Field(default=None, description="Source bytes to download.")
    published_bytes: int = Field(default=0, description="Bytes of the files published so far.")
    queue_position: int | None = Field(
        default=None,
        description="A queued job's place in the queue (1: starts next; jobs start first come, "
        "first served); null unless queued.",
    )


class FileDoc(_Doc):
    kind: str
    format: str
    name: str
    url: str
    bytes: int
    sha256: str
    duration: float | None


class SegmentDoc(_Doc):
    index: int
    knowledge_id: str | None
    title: str
    description: str
    start: float
    end: float
    precision: str
    files: list[FileDoc]
    note: str | None


class ResultsDoc(_Doc):
    """The clips published so far: listed (and downloadable) as each is published, while the
    job runs; ``manifest_url`` appears when the job has finished."""

    job_id: str
    status: StatusWord
    segments: list[SegmentDoc]
    manifest_url: str | None
    segments_total: int = Field(default=0, description="Clips in the plan (0 until known).")
    notes: list[str] = Field(
        default_factory=list,
        description="What the planner changed: every snap, merge, trim, clamp or dropped "
        "knowledge point, and why (as in the submit response), then what the run added once "
        "it knew the source's real duration (a clip clamped to it).",
    )


class JobSummary(_Doc):
    job_id: str
    status: StatusWord
    stage: str | None
    percent: int
    segments_done: int
    segments_total: int
    video_url: str
    title: str | None = Field(
        default=None,
        description="The title the source reported, else the file name in its URL; "
        "None when neither is known.",
    )
    created_at: str
    message: str | None
    links: Links
    eta_seconds: int | None = None
    queue_position: int | None = Field(
        default=None,
        description="A queued job's place in the queue (1: starts next; jobs start first come, "
        "first served); null unless queued.",
    )
    submitted_by: str | None = Field(
        default=None,
        description="Who submitted the job: the authenticated identity (API key name, or the "
        "user TokenReview named), as the gateway recorded it; null when unknown.",
    )


class JobList(_Doc):
    jobs: list[JobSummary]
    next_cursor: str | None


class FieldProblem(_Doc):
    field: str
    message: str


class ProblemDoc(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldProblem] | None = None


class CheckDoc(_Doc):
    name: str
    ok: bool
    detail: str


class ReadyDoc(_Doc):
    ready: bool
    backend: str
    checks: list[CheckDoc]
