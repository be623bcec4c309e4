"""The ``VideoProcessingJob`` status: what happened.

Two writers share the status, each owning its own fields (see ``docs/worker-contract.md``):

- the **operator** writes ``phase``, ``stage``, ``message``, ``conditions``, ``observedGeneration``,
  ``jobName``, ``attempts``, ``queuedAt``, ``startTime``, ``completionTime``, ``shards`` and, for
  failures it detects itself, ``error``; for a sharded run also ``progress`` (summed over
  ``shardProgress``);
- the **worker** writes ``progress``, ``source``, ``segments``, ``segmentsSummary``,
  ``manifestUri`` and, for failures it detects, ``error``; a shard of a sharded run writes only
  ``shardProgress.<index>`` and ``error``, and the shard that publishes the merged manifest the
  rest.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from videojobs.models.base import StatusModel, Timestamp

Phase = Literal["Pending", "Queued", "Running", "Succeeded", "Failed", "Cancelled"]
Stage = Literal["Starting", "Downloading", "Probing", "Cutting", "Uploading", "Finished"]
ConditionType = Literal["Accepted", "Progressing", "Complete", "Failed"]
ConditionStatus = Literal["True", "False", "Unknown"]

FINISHED_PHASES: frozenset[str] = frozenset({"Succeeded", "Failed", "Cancelled"})


class Condition(StatusModel):
    """A Kubernetes-style condition (``kubectl wait --for=condition=Complete`` reads these)."""

    type: ConditionType = Field(description="Accepted, Progressing, Complete or Failed.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase machine-readable reason.")
    message: str = Field(default="", description="Human-readable details.")
    last_transition_time: Timestamp = Field(description="When status last changed.")
    observed_generation: int | None = Field(
        default=None, description="The generation this condition was computed for."
    )


class Progress(StatusModel):
    """Live progress, written by the worker at most every few seconds."""

    stage: Stage = Field(description="What the worker is doing.")
    percent: int = Field(default=0, ge=0, le=100, description="Overall percent done.")
    segments_done: int = Field(default=0, ge=0, description="Clips published so far.")
    segments_total: int = Field(default=0, ge=0, description="Clips in the plan.")
    bytes_done: int | None = Field(default=None, ge=0, description="Bytes downloaded so far.")
    bytes_total: int | None = Field(default=None, ge=0, description="Bytes to download.")
    eta_seconds: int | None = Field(default=None, ge=0, description="Estimated seconds left.")
    message: str = Field(default="", description="What is happening, for people.")
    updated_at: Timestamp | None = Field(default=None, description="When this was written.")


class CaptionsUsed(StatusModel):
    """Where the transcript came from, when it is the source's own captions."""

    language: str = Field(description="Caption language, as the site names it (e.g. en).")
    automatic: bool = Field(description="True for automatic (speech-recognised) captions.")
    format: str = Field(description="The caption format fetched, e.g. vtt.")
    cues: int = Field(ge=0, description="Cues after merging rolling duplicates.")


class SourceInfo(StatusModel):
    """What the worker found when it probed the source."""

    title: str | None = Field(default=None, description="Title reported by the site.")
    duration_seconds: float | None = Field(default=None, description="Length of the source.")
    container: str | None = Field(default=None, description="Container format, e.g. mp4.")
    video_codec: str | None = Field(default=None, description="Video codec, e.g. h264.")
    audio_codec: str | None = Field(default=None, description="Audio codec, or absent.")
    width: int | None = Field(default=None, description="Width in pixels (after rotation).")
    height: int | None = Field(default=None, description="Height in pixels (after rotation).")
    fps: float | None = Field(default=None, description="Average frame rate.")
    rotation: int | None = Field(default=None, description="Display rotation in degrees.")
    size_bytes: int | None = Field(default=None, description="Size of the downloaded media.")
    partial: bool = Field(
        default=False, description="True when only the needed time ranges were downloaded."
    )
    downloader: str | None = Field(
        default=None, description="The downloader and its version, e.g. 'yt-dlp 2026.10.26'."
    )
    js_runtime: str | None = Field(
        default=None,
        description="The JavaScript runtime yt-dlp used (e.g. 'deno 2.9.8'), or absent.",
    )
    captions: CaptionsUsed | None = Field(
        default=None, description="The source's captions used as the transcript (fromSource)."
    )
    chapters: int | None = Field(
        default=None,
        ge=0,
        description="Chapters the source has, when its segments came from them (fromChapters).",
    )


OutputKind = Literal["video", "thumbnail", "subtitles", "manifest"]
"""What a published file is."""


class OutputFile(StatusModel):
    """One published file."""

    kind: OutputKind = Field(description="What the file is.")
    format: str = Field(description="mp4, webm, jpg, vtt or json.")
    uri: str = Field(description="file:// or s3:// URI of the published file.")
    bytes: int = Field(ge=0, description="Size in bytes.")
    sha256: str = Field(description="Hex SHA-256 of the content.")
    duration_seconds: float | None = Field(
        default=None, description="Measured duration (video files)."
    )


class SegmentResult(StatusModel):
    """One clip as published."""

    index: int = Field(ge=1, description="1-based position in the plan.")
    knowledge_id: str | None = Field(default=None, description="Knowledge id.")
    title: str = Field(description="Clip title.")
    start: float = Field(description="Planned start in the source, seconds.")
    end: float = Field(description="Planned end in the source, seconds.")
    stem: str = Field(description="File name stem.")
    precision: str = Field(
        description="The precision actually used (smart falls back to accurate when the "
        "source's codec parameters do not allow a clean join)."
    )
    start_offset_seconds: float = Field(
        default=0.0,
        description="Actual minus planned start; non-zero only for copy, whose starts snap "
        "to keyframes.",
    )
    files: list[OutputFile] = Field(default_factory=list, description="Published files.")
    note: str | None = Field(default=None, description="Anything the user should know.")


class ErrorInfo(StatusModel):
    """Why a job failed, for a person to act on."""

    category: str = Field(description="Failure category, e.g. Unavailable, Network.")
    reason: str = Field(description="CamelCase reason, also used in events and conditions.")
    message: str = Field(description="What went wrong and what to do about it.")
    exit_code: int | None = Field(default=None, description="Worker exit code, if any.")
    permanent: bool = Field(default=True, description="False when a retry may succeed.")
    shard: int | None = Field(
        default=None, ge=0, description="The shard (Job completion index) that failed, if sharded."
    )


class ShardProgress(StatusModel):
    """One shard's live progress, written by that shard's pod under its own key."""

    stage: Stage = Field(description="What the shard is doing.")
    percent: int = Field(default=0, ge=0, le=100, description="Percent of its share done.")
    segments_done: int = Field(default=0, ge=0, description="Clips of its share published.")
    segments_total: int = Field(default=0, ge=0, description="Clips in its share.")
    bytes_done: int | None = Field(default=None, ge=0, description="Bytes it downloaded.")
    updated_at: Timestamp | None = Field(default=None, description="When this was written.")


class ShardsSummary(StatusModel):
    """How the shards of a sharded run stand (operator-owned, from the Indexed Job's status)."""

    count: int = Field(ge=1, description="Shards of the run (the Job's completions).")
    succeeded: int = Field(default=0, ge=0, description="Shards finished.")
    completed_indexes: str = Field(default="", description="Finished indexes, e.g. 0-2,5.")
    failed_indexes: str = Field(
        default="", description="Indexes that failed for good (per-index retries used up)."
    )


STATUS_NOTES_MAX = 100
"""Most notes in ``status.notes`` (the last one says how many more are in manifest.json)."""
STATUS_NOTE_MAX_CHARS = 1000
"""Longest note in ``status.notes`` (a longer one is cut short)."""
STATUS_NOTES_MAX_BYTES = 32 * 1024
"""Most UTF-8 bytes of ``status.notes`` in all (a resource stays under etcd's 1.5 MiB)."""


def status_notes(notes: list[str]) -> list[str]:
    """``notes`` within the bounds of ``status.notes``: each cut to
    :data:`STATUS_NOTE_MAX_CHARS`; the leading ones that fit :data:`STATUS_NOTES_MAX` and
    :data:`STATUS_NOTES_MAX_BYTES`, then a note saying how many more manifest.json holds."""
    cut = [n if len(n) <= STATUS_NOTE_MAX_CHARS else n[: STATUS_NOTE_MAX_CHARS - 1] + "…"
           for n in notes]  # fmt: skip
    kept: list[str] = []
    size = 100  # room for the closing note
    for note in cut:
        size += len(note.encode()) + 4
        if len(kept) == STATUS_NOTES_MAX - 1 or size > STATUS_NOTES_MAX_BYTES:
            break
        kept.append(note)
    if len(kept) == len(cut):
        return kept
    return [*kept, f"... and {len(cut) - len(kept)} more notes (see manifest.json)"]


class VideoProcessingJobStatus(StatusModel):
    """The observed state of a VideoProcessingJob."""

    phase: Phase | None = Field(default=None, description="Lifecycle phase.")
    stage: Stage | None = Field(default=None, description="What a Running job is doing.")
    message: str | None = Field(default=None, description="Short summary for people.")
    observed_generation: int | None = Field(
        default=None, description="The spec generation the operator last acted on."
    )
    conditions: list[Condition] = Field(default_factory=list, description="Conditions.")
    job_name: str | None = Field(default=None, description="Name of the batch/v1 Job.")
    attempts: int | None = Field(default=None, description="Pods started for the current run.")
    queued_at: Timestamp | None = Field(default=None, description="When the job was queued.")
    start_time: Timestamp | None = Field(default=None, description="When the Job was created.")
    completion_time: Timestamp | None = Field(default=None, description="When it finished.")
    progress: Progress | None = Field(default=None, description="Live progress.")
    source: SourceInfo | None = Field(default=None, description="Probed source metadata.")
    segments: list[SegmentResult] = Field(default_factory=list, description="Published clips.")
    segments_summary: str | None = Field(
        default=None, description="'published/planned', e.g. 3/8 (a printer column)."
    )
    manifest_uri: str | None = Field(default=None, description="URI of manifest.json.")
    notes: list[Annotated[str, StringConstraints(max_length=STATUS_NOTE_MAX_CHARS)]] | None = Field(
        default=None,
        max_length=STATUS_NOTES_MAX,
        description="The run's planner notes (worker-owned): every snap, merge, trim, clamp to "
        "the source's real duration, or dropped knowledge point, and why; as in manifest.json.",
    )
    error: ErrorInfo | None = Field(default=None, description="Why the job failed.")
    shards: ShardsSummary | None = Field(
        default=None, description="The shards of a sharded run (spec.parallelism > 1)."
    )
    shard_progress: dict[str, ShardProgress] | None = Field(
        default=None,
        max_length=16,
        description="Each shard's progress by its index ('0', '1', ...); progress sums them.",
    )
