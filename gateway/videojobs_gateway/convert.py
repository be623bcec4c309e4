"""Pure translations between the REST shapes and the ``VideoProcessingJob`` contract.

- a submission (the REST body, or ``{"spec": {...}}``) becomes a spec dict; it is checked by the
  very code behind ``videojobs validate`` (:func:`validate_spec`), so a ``422`` carries the same
  messages, with the field named in the shape the caller sent;
- a stored job (spec + :class:`~videojobs.models.VideoProcessingJobStatus`) becomes the REST
  status, progress and results documents.

The REST body is the seed's document: ``transcript`` entries and ``knowledge_points`` with
snake_case ``start_time``/``end_time``/``knowledge_id``. It maps onto the spec as a
``seed-json`` transcript (``videojobs/transcripts.py``), which carries the knowledge points too.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from videojobs.errors import InvalidSpec, Problem
from videojobs.models import API_VERSION, KIND, VideoProcessingJobStatus
from videojobs.models.spec import INLINE_TRANSCRIPT_MAX

REST_FIELDS = ("video_url", "transcript", "knowledge_points", "output", "segmentation", "name")
"""Top-level fields of the REST body (``spec`` is the alternative shape)."""

PHASE_TO_STATUS = {
    None: "pending",
    "Pending": "pending",
    "Queued": "queued",
    "Running": "processing",
    "Succeeded": "completed",
    "Failed": "failed",
    "Cancelled": "cancelled",
}
STATUS_TO_PHASE = {v: k for k, v in PHASE_TO_STATUS.items() if k is not None}
STATUSES = ("pending", "queued", "processing", "completed", "failed", "cancelled")
FINISHED_STATUSES = frozenset({"completed", "failed", "cancelled"})


class SubmissionError(InvalidSpec):
    """The submission is invalid; each problem's ``path`` is a field of what was sent."""


@dataclass
class Submission:
    """A checked submission: the spec (camelCase dict) and how the caller sent it."""

    spec: dict[str, Any]
    shape: str
    """``rest`` or ``spec``."""
    name: str | None = None
    notes: list[str] = field(default_factory=list)
    loaded: Any = field(default=None, repr=False, compare=False)
    """The checked job (:class:`videojobs.validation.LoadedJob`): its transcript and plan."""


def body_digest(body: Any) -> str:
    """A stable hash of a JSON body (Idempotency-Key reuse with another body is refused)."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def rest_to_spec(body: dict[str, Any], storage: dict[str, Any]) -> dict[str, Any]:
    """The spec of a REST body. Shape problems (not the values) raise :class:`SubmissionError`."""
    problems = [
        Problem(key, f"unknown field {key!r}; expected one of {', '.join(REST_FIELDS)} or spec")
        for key in body
        if key not in REST_FIELDS
    ]
    if "video_url" not in body:
        problems.append(Problem("video_url", "required field is missing"))
    output = body.get("output")
    if output is None:  # absent or null: the defaults
        output = {}
    if not isinstance(output, dict):
        problems.append(Problem("output", f"expected an object, got {type(output).__name__}"))
    segmentation = body.get("segmentation")
    if segmentation is not None and not isinstance(segmentation, dict):
        problems.append(
            Problem("segmentation", f"expected an object, got {type(segmentation).__name__}")
        )
    extra: dict[str, Any] = {"segmentation": segmentation} if segmentation else {}
    transcript = body.get("transcript")
    points = body.get("knowledge_points", [])
    if isinstance(transcript, str) or transcript is None:
        if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
            problems.append(Problem("knowledge_points", "expected a list of objects"))
    if transcript is None and not points:
        problems.append(
            Problem("transcript", "required field is missing (it may be left out only when "
                    "every knowledge point has start_time and end_time)")
        )  # fmt: skip
    if problems:
        raise SubmissionError(problems)
    if isinstance(transcript, str) or transcript is None:
        # a WebVTT, SRT or other text transcript: its format is detected; the knowledge points
        # go into the spec (the seed document holds timed entries only). No transcript: the
        # knowledge points carry their own start and end times (the spec checks that).
        spec: dict[str, Any] = {"source": {"url": body["video_url"]}}
        if transcript is not None:
            spec["transcript"] = {"format": "auto", "inline": transcript.rstrip("\n") + "\n"}
        return {
            **spec,
            "knowledgePoints": [_spec_point(p) for p in points],
            "output": {"formats": ["mp4"], **output, "storage": storage},
            **extra,
        }
    document = {
        "transcript": body["transcript"],
        "knowledge_points": body.get("knowledge_points", []),
    }
    return {
        "source": {"url": body["video_url"]},
        "transcript": {
            "format": "seed-json",
            # one entry per line, so a problem's line points at one entry
            "inline": _seed_text(document),
        },
        "output": {"formats": ["mp4"], **output, "storage": storage},
        **extra,
    }


_POINT_KEYS = {"knowledge_id": "id", "start_time": "start", "end_time": "end"}


def _spec_point(point: dict[str, Any]) -> dict[str, Any]:
    """A REST knowledge point as a spec knowledge point (``knowledge_id`` → ``id`` ...)."""
    return {_POINT_KEYS.get(k, k): v for k, v in point.items() if v is not None}


def _seed_text(document: dict[str, Any]) -> str:
    lines = ["{"]
    for n, key in enumerate(("transcript", "knowledge_points")):
        value = document[key]
        if isinstance(value, list):
            lines.append(f"  {json.dumps(key)}: [")
            entries = [json.dumps(v, ensure_ascii=False) for v in value]
            lines += [
                f"    {e}{',' if i < len(entries) - 1 else ''}" for i, e in enumerate(entries)
            ]
            lines.append("  ]" + ("," if n == 0 else ""))
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}" + ("," if n == 0 else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


_REST_PATHS = (
    ("spec.source.url", "video_url"),
    ("spec.output", "output"),
    ("spec.segmentation", "segmentation"),
    ("spec.transcript.inline", "transcript"),
)
_ENTRY = re.compile(
    r"^(?:transcript line \d+: )?((?:transcript|knowledge_points)\[\d+\](?:\.\w+)?)"
)
_ENTRY_WORDS = re.compile(r"^(?:transcript line \d+: )?(entry|cue) (\d+)\b")


_NAMED_POINT = re.compile(r"\bknowledgePoints\[(\d+)\]")
_SPEC_POINT = re.compile(r"^spec\.knowledgePoints\[(\d+)\](?:\.(\w+))?")
_REST_POINT_KEYS = {v: k for k, v in _POINT_KEYS.items()}


def _point_field(path: str) -> str:
    """A spec knowledge point's path as the REST body names it, with its index kept (a form
    shows the problem at its row): ``spec.knowledgePoints[1].start`` →
    ``knowledge_points[1].start_time``."""
    match = _SPEC_POINT.match(path)
    if match is None:
        return "knowledge_points"
    index, key = match.groups()
    field = f"knowledge_points[{index}]"
    return f"{field}.{_REST_POINT_KEYS.get(key, key)}" if key else field


def _rest_field(problem: Problem) -> str:
    """The REST field a spec problem is about."""
    if problem.path.startswith("spec.transcript"):
        match = _ENTRY.match(problem.message)
        if match:
            return match.group(1)
        match = _ENTRY_WORDS.match(problem.message)
        if match:
            return f"transcript[{int(match.group(2)) - 1}]"
        if "knowledge" in problem.message:
            return "knowledge_points"
        return "transcript"
    if problem.path.startswith("spec.knowledgePoints"):
        return _point_field(problem.path)
    if problem.path.startswith("spec.segments"):
        return "knowledge_points"
    for prefix, name in _REST_PATHS:
        if (
            problem.path == prefix
            or problem.path.startswith(prefix + ".")
            or (problem.path.startswith(prefix + "["))
        ):
            return name + problem.path[len(prefix) :]
    return problem.path.removeprefix("spec.")


def manifest_yaml(spec: dict[str, Any], name: str = "request") -> str:
    """The manifest ``videojobs validate`` would be given for ``spec``."""

    class _Dumper(yaml.SafeDumper):
        pass

    def _str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
        style = "|" if "\n" in data and not any(ord(c) < 32 and c != "\n" for c in data) else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    _Dumper.add_representer(str, _str)
    manifest = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name},
        "spec": spec,
    }
    return yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10**6)


def check_spec(spec: dict[str, Any]) -> Any:
    """Check ``spec`` with ``videojobs validate``'s code; return the checked job
    (:class:`videojobs.validation.LoadedJob`: model, transcript, plan, notes).

    Raises:
        InvalidSpec: the problems, exactly as ``videojobs validate`` reports them for a manifest
            holding this spec.
    """
    from videojobs.validation import check_file

    with tempfile.TemporaryDirectory(prefix="videojobs-gw-") as tmp:
        path = Path(tmp) / "request.yaml"
        path.write_text(manifest_yaml(spec), encoding="utf-8")
        return check_file(path)[0]


def loaded_notes(loaded: Any) -> list[str]:
    """A checked job's notes, then its planner's."""
    notes = list(loaded.notes)
    if loaded.plan is not None:
        # the planner's notes: what was snapped, merged, trimmed, clamped or dropped, and why
        notes += [n for n in loaded.plan.notes if n not in notes]
    return notes


def validate_spec(spec: dict[str, Any]) -> list[str]:
    """Check ``spec`` with ``videojobs validate``'s code; return its notes (see
    :func:`check_spec`)."""
    return loaded_notes(check_spec(spec))


def check_submission(body: Any, storage: dict[str, Any]) -> Submission:
    """Turn a POST body into a checked spec.

    Raises:
        SubmissionError: the problems, each naming the field as the caller sent it.
    """
    if not isinstance(body, dict):
        raise SubmissionError(Problem("body", f"expected a JSON object, got {type(body).__name__}"))
    if "spec" in body:
        extra = sorted(set(body) - {"spec", "name"})
        if extra:
            raise SubmissionError(
                Problem(extra[0], "unknown field next to 'spec'; send either spec or the REST "
                        "fields")
            )  # fmt: skip
        spec = body["spec"]
        if not isinstance(spec, dict):
            raise SubmissionError(Problem("spec", f"expected an object, got {type(spec).__name__}"))
        spec = dict(spec)
        output = spec.get("output")
        if isinstance(output, dict) and "storage" not in output:
            spec["output"] = {**output, "storage": storage}
        shape = "spec"
    else:
        spec = rest_to_spec(body, storage)
        shape = "rest"
        inline = spec.get("transcript", {}).get("inline", "")
        if len(inline) > INLINE_TRANSCRIPT_MAX:
            # refused here, before the YAML round trip of validate_spec, which would take time
            # in proportion to the size (the spec refuses it in any case)
            raise SubmissionError(
                Problem("transcript", f"{len(inline)} characters as an inline transcript; at "
                        f"most {INLINE_TRANSCRIPT_MAX}: send fewer entries, or a spec with "
                        "transcript.url")
            )  # fmt: skip
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or not _NAME.match(name)):
        raise SubmissionError(
            Problem("name", "must be a lowercase DNS label of at most 40 characters "
                    f"(a-z, 0-9, '-') (got {name!r})")
        )  # fmt: skip
    try:
        loaded = check_spec(spec)
    except InvalidSpec as exc:
        problems = [
            Problem(_rest_field(p), _rest_message(p.message)) if shape == "rest" else p
            for p in exc.problems
        ]
        raise SubmissionError(problems) from None
    notes = loaded_notes(loaded)
    if shape == "rest":
        notes = [_rest_note(n) for n in notes]
    return Submission(spec=spec, shape=shape, name=name, notes=notes, loaded=loaded)


_POINT_PATH = re.compile(r"\b(?:transcript\.knowledge_points|spec\.knowledgePoints)\[")


def _rest_note(note: str) -> str:
    """A planner note in the REST body's names (``knowledge_points[1]``)."""
    return _POINT_PATH.sub("knowledge_points[", note)


def job_notes(submitted: list[str], status: VideoProcessingJobStatus, shape: str) -> list[str]:
    """A job's notes: those of its submission, then its run's that say more (the worker plans
    again once it knows the source's real duration: a clip clamped to it, for one). The run's
    notes use the spec's names; a job sent as the REST body reads them in that body's names."""
    notes = list(submitted)
    seen = set(notes)
    for note in status.notes or []:
        shown = _rest_note(note) if shape == "rest" else note
        if shown not in seen:
            seen.add(shown)
            notes.append(shown)
    return notes


def _rest_message(message: str) -> str:
    """A problem's message with the spec's names of the REST fields (``knowledge_points[1]``,
    ``start_time`` and ``end_time``) where it names knowledge points without a transcript."""
    if "without a transcript" not in message:
        return message
    message = _NAMED_POINT.sub(r"knowledge_points[\1]", message)
    message = re.sub(r"has no (start|end)\b", r"has no \1_time", message)
    return message.replace("start and end", "start_time and end_time")


_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")


# -- reading ------------------------------------------------------------------------------------


def rest_status(phase: str | None) -> str:
    """The REST status word of a phase."""
    return PHASE_TO_STATUS.get(phase, "pending")


def file_name_of(uri: str) -> str:
    """The name under which a published file is served (its base name)."""
    return PurePosixPath(uri.split("?", 1)[0]).name


def safe_file_name(name: str) -> bool:
    """True when ``name`` is one plain file name (no directory parts, no climbing, no NUL)."""
    return (
        bool(name)
        and name not in (".", "..")
        and "/" not in name
        and "\\" not in name
        and "\x00" not in name
        and not name.startswith(".")
        and len(name) <= 255
    )


def status_document(job_id: str, status: VideoProcessingJobStatus) -> dict[str, Any]:
    """``GET /status/{id}``."""
    err = status.error
    return {
        "job_id": job_id,
        "status": rest_status(status.phase),
        "stage": status.stage or (status.progress.stage if status.progress else None),
        "message": status.message,
        "error": (
            {
                "category": err.category,
                "reason": err.reason,
                "message": err.message,
                "permanent": err.permanent,
            }
            if err is not None
            else None
        ),  # fmt: skip
        "created_at": None,
        "started_at": status.start_time,
        "finished_at": status.completion_time,
    }


def progress_document(job_id: str, status: VideoProcessingJobStatus) -> dict[str, Any]:
    """``GET /progress/{id}`` (and each SSE event)."""
    p = status.progress
    word = rest_status(status.phase)
    percent = p.percent if p else 0
    if word == "completed":
        percent = 100
    return {
        "job_id": job_id,
        "status": word,
        "stage": p.stage if p else None,
        "percent": percent,
        "segments_done": p.segments_done if p else len(status.segments),
        "segments_total": p.segments_total if p else 0,
        "eta_seconds": _eta(word, p),
        "message": p.message if p else "",
        "bytes_done": p.bytes_done if p else None,
        "bytes_total": p.bytes_total if p else None,
        "published_bytes": sum(f.bytes for seg in status.segments for f in seg.files),
        "queue_position": None,
    }


def _eta(word: str, progress: Any) -> int | None:
    """Seconds left: the worker's estimate while processing, 0 once completed, else null."""
    if word == "completed":
        return 0
    if word != "processing" or progress is None:
        return None
    eta: int | None = progress.eta_seconds
    return eta


def results_document(
    job_id: str, status: VideoProcessingJobStatus, file_url: Any
) -> dict[str, Any]:
    """``GET /results/{id}``; ``file_url(name)`` is the download URL of a file name."""
    segments = []
    for seg in status.segments:
        files = [
            {
                "kind": f.kind,
                "format": f.format,
                "name": file_name_of(f.uri),
                "url": file_url(file_name_of(f.uri)),
                "bytes": f.bytes,
                "sha256": f.sha256,
                "duration": f.duration_seconds,
            }
            for f in seg.files
        ]
        segments.append(
            {
                "index": seg.index,
                "knowledge_id": seg.knowledge_id,
                "title": seg.title,
                "description": "",
                "start": seg.start,
                "end": seg.end,
                "precision": seg.precision,
                "files": files,
                "note": seg.note,
            }
        )
    return {
        "job_id": job_id,
        "status": rest_status(status.phase),
        "segments": segments,
        "manifest_url": file_url(file_name_of(status.manifest_uri))
        if status.manifest_uri
        else None,
        "segments_total": max(
            status.progress.segments_total if status.progress else 0, len(segments)
        ),
        "notes": [],
    }


def descriptions(spec: dict[str, Any]) -> dict[str, str]:
    """Knowledge id → description, from the spec's knowledge points or seed-json transcript."""
    out: dict[str, str] = {}
    for kp in spec.get("knowledgePoints") or []:
        if isinstance(kp, dict) and kp.get("id"):
            out[str(kp["id"])] = str(kp.get("description") or "")
    for seg in spec.get("segments") or []:
        if isinstance(seg, dict) and seg.get("knowledgeId"):
            out[str(seg["knowledgeId"])] = str(seg.get("description") or "")
    transcript = spec.get("transcript") or {}
    if transcript.get("format") == "seed-json" and isinstance(transcript.get("inline"), str):
        try:
            doc = json.loads(transcript["inline"])
        except ValueError:
            doc = {}
        for kp in doc.get("knowledge_points") or [] if isinstance(doc, dict) else []:
            if isinstance(kp, dict):
                kid = kp.get("knowledge_id") or kp.get("id")
                if kid:
                    out[str(kid)] = str(kp.get("description") or "")
    return out
