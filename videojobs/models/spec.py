"""The ``VideoProcessingJob`` spec: what the user asks for.

The CRD in ``crds/`` is generated from these models (``videojobs crd``). Cross-field rules that
the API server can check are declared once, as CEL in ``x-kubernetes-validations``, and again as
pydantic validators so that ``videojobs validate`` and the operator give the same answer.
"""

from __future__ import annotations

import string
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator
from pydantic.json_schema import JsonDict

from videojobs.models.base import DurationValue, Identifier, Model, TimeValue

TranscriptFormat = Literal["auto", "webvtt", "srt", "json", "whisper-json", "seed-json"]
OutputFormat = Literal["mp4", "webm"]
Precision = Literal["copy", "accurate", "smart"]
OverlapPolicy = Literal["merge", "trim", "allow", "reject"]
ShortSegmentPolicy = Literal["merge", "reject", "keep"]
PartialDownload = Literal["auto", "always", "never"]

NAMING_FIELDS = ("index", "knowledge_id", "title", "start", "end")
"""Placeholders a naming template may use (Python format syntax, e.g. ``{index:02d}``)."""

INLINE_TRANSCRIPT_MAX = 65536
"""Largest inline transcript; larger ones go in a ConfigMap (the spec travels in an env var)."""

# No CEL rule compares times: they are int-or-string, and before Kubernetes 1.34 the CEL cost
# estimator sizes every int-or-string value at the 3 MiB request limit whatever its maxLength, so
# one ``matches`` or comparison per segment (times maxItems 500) costs ~3.6e9 against the API
# server's limits of 1e7 per rule and 1e8 per CRD, and the CRD is refused. "end after start" is
# checked by these models instead (``videojobs validate``, and the operator fails the resource
# with InvalidSpec); tests/unit/test_crd_cel_cost.py keeps every rule within budget.
IMMUTABLE_FIELDS = ("source", "segments", "transcript", "knowledgePoints")
"""Spec fields that cannot change after creation (one transition rule over the whole spec)."""


def _unchanged(field: str) -> str:
    # has() on both sides: a field-level transition rule runs only when the field exists in the
    # old and the new object, so adding, removing or swapping a field would pass it.
    return (
        f"has(self.{field}) == has(oldSelf.{field}) && "
        f"(!has(self.{field}) || self.{field} == oldSelf.{field})"
    )


def _cel(rule: str, message: str, **extra: str) -> JsonDict:
    return {"rule": rule, "message": message, **extra}


def _one_of(*fields: str) -> str:
    return " + ".join(f"(has(self.{f}) ? 1 : 0)" for f in fields) + " == 1"


class SecretKeyRef(Model):
    """A key in a Secret in the resource's namespace."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(
        description="Name of the Secret."
    )
    key: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(
        description="Key within the Secret."
    )


class ConfigMapKeyRef(Model):
    """A key in a ConfigMap in the resource's namespace."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(
        description="Name of the ConfigMap."
    )
    key: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(
        description="Key within the ConfigMap."
    )


class Source(Model):
    """Where the video comes from."""

    url: Annotated[str, StringConstraints(min_length=1, max_length=4096)] = Field(
        description="YouTube, Vimeo, HLS (.m3u8) or direct video URL; yt-dlp downloads it."
    )
    max_height: int | None = Field(
        default=None,
        ge=144,
        le=4320,
        description="Prefer a rendition at most this many pixels high (e.g. 720).",
    )
    format: str | None = Field(
        default=None,
        max_length=512,
        description="Advanced: a yt-dlp format selector overriding the default choice "
        "(H.264/AAC in MP4 when offered, honouring maxHeight).",
    )
    partial_download: PartialDownload = Field(
        default="auto",
        description="Download only the time ranges the plan needs: 'auto' does so when the plan "
        "covers a small part of a long source, 'always' and 'never' force the choice.",
    )
    cookies_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Netscape-format cookies file for videos that need a login.",
    )


class TranscriptSource(Model):
    """A transcript with timestamps; exactly one of inline, configMapKeyRef or url."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    _one_of("inline", "configMapKeyRef", "url"),
                    "transcript needs exactly one of inline, configMapKeyRef or url",
                )
            ]
        }
    )

    format: TranscriptFormat = Field(
        default="auto",
        description="auto detects WebVTT, SRT, JSON cue lists, Whisper JSON and the seed JSON "
        "document (transcript + knowledge_points).",
    )
    inline: str | None = Field(
        default=None,
        max_length=INLINE_TRANSCRIPT_MAX,
        description="The transcript text itself (at most 64 KiB; use a ConfigMap for more).",
    )
    config_map_key_ref: ConfigMapKeyRef | None = Field(
        default=None, description="A ConfigMap key holding the transcript."
    )
    url: str | None = Field(
        default=None, max_length=4096, description="An http(s) URL the worker downloads."
    )
    language: str | None = Field(
        default=None, max_length=35, description="BCP 47 language tag, written into subtitles."
    )

    @model_validator(mode="after")
    def _exactly_one_source(self) -> TranscriptSource:
        given = [n for n in ("inline", "config_map_key_ref", "url") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("transcript needs exactly one of inline, configMapKeyRef or url")
        return self


class KnowledgePoint(Model):
    """A topic to cut out, anchored by start time, by transcript cues or by a quote."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    _one_of("start", "quote", "cues"),
                    "a knowledge point needs exactly one of start, quote or cues",
                ),
                _cel("!has(self.end) || !has(self.cues)", "end cannot be combined with cues"),
            ]
        }
    )

    id: Identifier = Field(description="Knowledge id, unique in the resource; used in file names.")
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="Human title of the clip."
    )
    description: str = Field(default="", max_length=2000, description="Longer description.")
    start: TimeValue | None = Field(default=None, description="Start time in the source.")
    end: TimeValue | None = Field(
        default=None,
        description="End time; when missing the clip runs to the next knowledge point's start "
        "or the end of the source.",
    )
    quote: str | None = Field(
        default=None,
        min_length=3,
        max_length=500,
        description="Words spoken at the start of the topic; matched against the transcript, "
        "tolerant of case, punctuation and small differences.",
    )
    cues: str | None = Field(
        default=None,
        max_length=500,
        pattern=r"^[A-Za-z0-9._-]+(\s*-\s*[A-Za-z0-9._-]+)?$",
        description="Transcript cues: a 1-based index or cue id ('41', 'intro'), or an "
        "inclusive range ('41-58').",
    )

    @model_validator(mode="after")
    def _one_anchor(self) -> KnowledgePoint:
        anchors = [n for n in ("start", "quote", "cues") if getattr(self, n) is not None]
        if len(anchors) != 1:
            raise ValueError("a knowledge point needs exactly one of start, quote or cues")
        if self.end is not None and self.cues is not None:
            raise ValueError("end cannot be combined with cues")
        if self.end is not None and self.start is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end:g}s) must be after start ({self.start:g}s)")
        return self


class ExplicitSegment(Model):
    """A clip given by its time range."""

    start: TimeValue = Field(description="Start time in the source.")
    end: TimeValue = Field(description="End time in the source (exclusive).")
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="Human title of the clip."
    )
    description: str = Field(default="", max_length=2000, description="Longer description.")
    knowledge_id: Identifier | None = Field(
        default=None, description="Knowledge id; used in file names."
    )

    @model_validator(mode="after")
    def _end_after_start(self) -> ExplicitSegment:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end:g}s) must be after start ({self.start:g}s)")
        return self


class Segmentation(Model):
    """How knowledge points and segments become clips."""

    overlap: OverlapPolicy = Field(
        default="merge",
        description="Overlapping ranges: merge them into one clip, trim the later one, allow "
        "the overlap, or reject the resource.",
    )
    min_duration: DurationValue = Field(
        default=1, description="Clips shorter than this are handled by shortSegments."
    )
    short_segments: ShortSegmentPolicy = Field(
        default="merge",
        description="A clip shorter than minDuration: merge it into its neighbour, reject the "
        "resource, or keep it.",
    )
    padding: DurationValue = Field(
        default=0, description="Extra time added before each start and after each end."
    )
    snap_to_cues: bool = Field(
        default=True,
        description="Move boundaries to transcript cue edges so clips do not cut mid-sentence.",
    )


class Quality(Model):
    """Encoder settings for re-encoded output."""

    crf: int | None = Field(
        default=None,
        ge=0,
        le=63,
        description="Constant rate factor; default 20 for H.264 and 32 for VP9.",
    )
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"] = (
        Field(default="veryfast", description="x264 preset (WebM maps it to a VP9 speed).")
    )
    audio_bitrate: Annotated[str, StringConstraints(pattern=r"^[0-9]+k$")] = Field(
        default="128k", description="Audio bitrate, e.g. 128k."
    )
    max_height: int | None = Field(
        default=None, ge=144, le=4320, description="Scale output down to at most this height."
    )


class PvcStorage(Model):
    """Clips go to a shared PersistentVolumeClaim."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.path) || (!self.path.startsWith('/') && !self.path.contains('..'))",
                    "path must be relative and must not contain '..'",
                    fieldPath=".path",
                )
            ]
        }
    )

    claim_name: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(
        description="Name of the PersistentVolumeClaim (ReadWriteMany for shared access)."
    )
    path: Annotated[str, StringConstraints(max_length=1024)] = Field(
        default="", description="Directory inside the volume (relative, no '..')."
    )

    @field_validator("path")
    @classmethod
    def _relative(cls, path: str) -> str:
        if path.startswith("/") or ".." in path:
            raise ValueError("path must be relative and must not contain '..'")
        return path


class S3Storage(Model):
    """Clips go to an S3-compatible object store."""

    bucket: Annotated[str, StringConstraints(min_length=3, max_length=63)] = Field(
        description="Bucket name."
    )
    prefix: Annotated[str, StringConstraints(max_length=1024)] = Field(
        default="", description="Key prefix, e.g. courses/k8s."
    )
    endpoint: str | None = Field(
        default=None,
        max_length=2048,
        description="Endpoint URL for MinIO, Ceph and other S3-compatible stores.",
    )
    region: str | None = Field(default=None, max_length=64, description="Region name.")
    force_path_style: bool = Field(
        default=False, description="Use path-style addressing (MinIO usually needs it)."
    )
    credentials_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY keys (the key "
        "field is ignored); when absent the pod's own identity is used.",
    )


class Storage(Model):
    """Where clips are published; exactly one backend."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(_one_of("pvc", "s3"), "storage needs exactly one of pvc or s3")
            ]
        }
    )

    pvc: PvcStorage | None = Field(default=None, description="A PersistentVolumeClaim.")
    s3: S3Storage | None = Field(default=None, description="An S3-compatible bucket.")

    @model_validator(mode="after")
    def _one_backend(self) -> Storage:
        if (self.pvc is None) == (self.s3 is None):
            raise ValueError("storage needs exactly one of pvc or s3")
        return self


class Output(Model):
    """What to produce and where to put it."""

    formats: list[OutputFormat] = Field(
        default_factory=lambda: list[OutputFormat](["mp4"]),
        min_length=1,
        max_length=2,
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="Container formats: mp4 (H.264/AAC) and/or webm (VP9/Opus).",
    )
    precision: Precision = Field(
        default="smart",
        description="copy: stream copy, starts snap to keyframes; accurate: re-encode, "
        "frame-exact; smart: frame-exact, re-encodes only partial GOPs.",
    )
    quality: Quality = Field(default_factory=Quality, description="Encoder settings.")
    naming: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        default="{index:02d}-{knowledge_id}-{title}",
        description="File stem template; placeholders: " + ", ".join(NAMING_FIELDS) + ".",
    )
    thumbnails: bool = Field(default=True, description="Write a JPEG thumbnail per clip.")
    subtitles: bool = Field(
        default=True, description="Write a WebVTT slice of the transcript per clip."
    )
    storage: Storage = Field(description="Where clips are published.")

    @field_validator("formats")
    @classmethod
    def _unique_formats(cls, formats: list[OutputFormat]) -> list[OutputFormat]:
        if len(set(formats)) != len(formats):
            raise ValueError("formats must not repeat")
        return formats

    @field_validator("naming")
    @classmethod
    def _known_placeholders(cls, naming: str) -> str:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(naming) if f is not None]
        except ValueError as exc:
            raise ValueError(f"invalid naming template {naming!r}: {exc}") from None
        unknown = [f for f in fields if f not in NAMING_FIELDS]
        if unknown:
            raise ValueError(
                f"unknown placeholder {{{unknown[0]}}} in naming; use {', '.join(NAMING_FIELDS)}"
            )
        return naming


class WorkerResources(Model):
    """Compute resources and scratch space of the worker pod."""

    cpu: str | None = Field(default=None, description="CPU request and limit, e.g. '2'.")
    memory: str | None = Field(default=None, description="Memory request and limit, e.g. 2Gi.")
    scratch_size: str | None = Field(
        default=None, description="Size limit of the scratch volume for the download, e.g. 20Gi."
    )


class VideoProcessingJobSpec(Model):
    """The desired state of a VideoProcessingJob."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "has(self.segments) != has(self.transcript)",
                    "give exactly one of segments (explicit ranges) or transcript",
                ),
                _cel(
                    "!has(oldSelf.cancel) || !oldSelf.cancel || self.cancel || "
                    "(has(self.rerunToken) && (!has(oldSelf.rerunToken) || "
                    "self.rerunToken != oldSelf.rerunToken))",
                    "cancel cannot be undone on its own; set a new rerunToken to run again",
                ),
                _cel(
                    " && ".join(_unchanged(f) for f in IMMUTABLE_FIELDS),
                    "source, segments, transcript and knowledgePoints are immutable; create a new "
                    "resource instead",
                ),
            ]
        }
    )

    source: Source = Field(
        description="The video to cut.",
    )
    segments: list[ExplicitSegment] | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="Explicit time ranges (instead of transcript + knowledgePoints).",
    )
    transcript: TranscriptSource | None = Field(
        default=None,
        description="A timed transcript; knowledge points are mapped onto it.",
    )
    knowledge_points: list[KnowledgePoint] = Field(
        default_factory=list,
        max_length=500,
        description="Topics to cut; with the seed JSON transcript format they may come from "
        "the transcript document instead.",
    )
    segmentation: Segmentation = Field(
        default_factory=Segmentation, description="Boundary and overlap rules."
    )
    output: Output = Field(description="Formats, precision, naming and storage.")
    resources: WorkerResources | None = Field(
        default=None, description="Worker pod resources; operator defaults otherwise."
    )
    backoff_limit: int = Field(
        default=3, ge=0, le=20, description="Retries of transient failures (Job backoffLimit)."
    )
    active_deadline_seconds: int | None = Field(
        default=None,
        ge=30,
        description="Give up after this many seconds of running (operator default otherwise).",
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None,
        ge=0,
        description="Delete this resource this long after it finished (operator default "
        "otherwise); published clips are kept.",
    )
    cancel: bool = Field(
        default=False,
        description="Set to true to cancel: the Job and its pods are removed, published clips "
        "are kept, the phase becomes Cancelled.",
    )
    rerun_token: str | None = Field(
        default=None,
        max_length=63,
        description="Change this value to run a finished or failed job again (clips already "
        "published with matching checksums are not cut again).",
    )

    @model_validator(mode="after")
    def _segmentation_mode(self) -> VideoProcessingJobSpec:
        if (self.segments is None) == (self.transcript is None):
            raise ValueError("give exactly one of segments (explicit ranges) or transcript")
        if self.segments is not None and self.knowledge_points:
            raise ValueError("knowledgePoints go with a transcript, not with explicit segments")
        return self

    @field_validator("knowledge_points")
    @classmethod
    def _unique_ids(cls, points: list[KnowledgePoint]) -> list[KnowledgePoint]:
        ids = [k.id for k in points]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"knowledge point id {dupes[0]!r} is used more than once")
        return points
