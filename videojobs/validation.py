"""Loading and checking manifests: YAML → models → transcript → plan, with clear problems.

Every problem names a field path in the manifest's camelCase (``spec.knowledgePoints[1].start``)
and, when it can, the line in the YAML file. A transcript problem names the transcript and its
line: for an inline transcript written as a literal block (``inline: |``) and for a ConfigMap
key in the same file, that is the line in the manifest file; for a transcript file next to the
manifest, the line in that file.

Files may hold several YAML documents. ``VideoProcessingJob`` documents are checked;
``ConfigMap`` documents are where ``transcript.configMapKeyRef`` looks first (by name; the
namespace is not compared), before a file next to the manifest named after the key. A
transcript given by ``url`` is fetched by the worker, so validation plans without it and only
complains about what does not depend on it.
"""

from __future__ import annotations

import base64
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from videojobs.errors import InvalidSpec, PlanError, Problem, TranscriptError
from videojobs.models import API_VERSION, KIND, SegmentPlan, Transcript
from videojobs.models.resource import VideoProcessingJob
from videojobs.models.spec import VideoProcessingJobSpec
from videojobs.planning import NeedsTranscript, plan_segments
from videojobs.sourceinfo import CaptionTrack, chapter_hints, resolve_from_source
from videojobs.transcripts import (
    MAX_NESTING,
    MAX_TRANSCRIPT_BYTES,
    decode_transcript,
    parse_transcript,
)

Loc = tuple[str | int, ...]


@dataclass
class Document:
    """One YAML document of a manifest file."""

    index: int
    data: Any
    node: yaml.Node

    @property
    def kind(self) -> str | None:
        return self.data.get("kind") if isinstance(self.data, dict) else None

    def _walk(self, loc: Loc) -> tuple[yaml.Node | None, int]:
        """The node at ``loc`` (None when absent) and the line of the deepest node found on the
        way (the key's line for mapping entries), 1-based."""
        node: yaml.Node = self.node
        line = node.start_mark.line + 1
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                entry = next(((k, v) for k, v in node.value if k.value == str(part)), None)
                if entry is None:
                    return None, line
                line, node = entry[0].start_mark.line + 1, entry[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if not 0 <= part < len(node.value):
                    return None, line
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                return None, line
        return node, line

    def line_of(self, loc: Loc) -> int | None:
        """1-based line of the deepest node on ``loc`` (the key, for mapping entries)."""
        return self._walk(loc)[1]

    def literal_offset(self, loc: Loc) -> int | None:
        """For a literal block scalar (``key: |``) at ``loc``: file line minus text line."""
        node = self._walk(loc)[0]
        if isinstance(node, yaml.ScalarNode) and node.style == "|":
            return node.start_mark.line + 1
        return None


def read_documents(path: Path) -> list[Document]:
    """The non-empty YAML documents of a file.

    Raises:
        InvalidSpec: unreadable file or invalid YAML (with the line).
    """
    try:
        with Path(path).open("rb") as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
        if len(raw) > MAX_MANIFEST_BYTES:
            raise InvalidSpec(
                Problem(
                    "file",
                    f"{path} is larger than the limit of {MAX_MANIFEST_BYTES} bytes "
                    "(MAX_MANIFEST_BYTES); an object the API server accepts is far smaller",
                )
            )
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidSpec(Problem("file", f"cannot read {path}: {exc}")) from None
    loader = _BoundedLoader(text)
    docs = []
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            data = loader.construct_document(node)
            if data is not None:
                docs.append(Document(index, data, node))
            index += 1
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        what = getattr(exc, "problem", None) or str(exc)
        raise InvalidSpec(
            Problem("yaml", f"not valid YAML: {what}", mark.line + 1 if mark else None)
        ) from None
    finally:
        loader.dispose()
    if not docs:
        raise InvalidSpec(Problem("file", f"{path} holds no YAML document"))
    return docs


MAX_YAML_NESTING = MAX_NESTING
MAX_YAML_NODES = 100_000
"""Most YAML values (scalars and collections) in one manifest file."""
MAX_MANIFEST_BYTES = 8 * 1024 * 1024
"""Largest manifest file ``videojobs validate`` reads (the API server takes ~1.5 MiB objects,
a ConfigMap at most 1 MiB; a few of them fit)."""
MAX_SHOWN_VALUE = 120
"""Longest bad value quoted back in a problem (a huge field is not echoed whole)."""
"""Deepest nesting of YAML collections in a manifest (PyYAML recurses once per level)."""


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses nesting deeper than :data:`MAX_YAML_NESTING` (a
    RecursionError otherwise) with a YAML error that has the line."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        self._nodes += 1
        try:
            if self._nodes > MAX_YAML_NODES:  # PyYAML takes seconds and ~300 B per node
                raise yaml.composer.ComposerError(
                    problem=f"more than {MAX_YAML_NODES} YAML values (MAX_YAML_NODES); a "
                    "resource the API server accepts has far fewer",
                    problem_mark=self.peek_event().start_mark,
                )
            if self._depth > MAX_YAML_NESTING:
                raise yaml.composer.ComposerError(
                    problem=f"collections nest deeper than the limit of {MAX_YAML_NESTING} "
                    "levels (MAX_NESTING)",
                    problem_mark=self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def loc_to_path(loc: Loc, prefix: str = "") -> str:
    """``("spec", "knowledgePoints", 1, "start")`` → ``spec.knowledgePoints[1].start``."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def path_to_loc(path: str) -> Loc:
    """The inverse of :func:`loc_to_path`."""
    loc: list[str | int] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        loc.append(int(index) if index else name)
    return tuple(loc)


_SCALARS = (str, int, float, bool, type(None))

_PATTERN_MESSAGES = {
    r"^[-._a-zA-Z0-9]+$": "must be a plain key: letters, digits, '-', '_' and '.' only "
    "(no '/'; it is never a path)",
    r"^[Hh][Tt][Tt][Pp][Ss]?://[^\x00-\x20\x7f]+$": "must be an http:// or https:// URL "
    "without spaces or control characters",
    r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]$": "must be a bucket name: letters, digits, '.', "
    "'-' and '_', starting and ending with a letter or digit",
}


_UNTIMED = re.compile(r"^without a transcript .*\(knowledgePoints\[(\d+)\] has no (start|end)\b")


def problems_from_validation_error(
    exc: ValidationError,
    prefix: str = "spec",
    *,
    line_of: Callable[[Loc], int | None] | None = None,
) -> list[Problem]:
    """One :class:`Problem` per pydantic error, with a camelCase path and the bad value.

    ``prefix`` is the path of the validated object (``spec`` for a spec, ``""`` for a whole
    manifest); ``line_of`` maps a full loc to a line in the source, when there is one.
    """
    problems = []
    for error in exc.errors():
        loc: Loc = tuple(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        kind = error["type"]
        value = error.get("input")
        if kind == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}; check its spelling and indentation"
        elif kind == "missing":
            message = "required field is missing"
        elif kind == "string_pattern_mismatch":
            pattern = str((error.get("ctx") or {}).get("pattern", ""))
            message = _PATTERN_MESSAGES.get(pattern, message)
        elif kind == "value_error" and re.match(r"end( \(| must)", message):
            loc = (*loc, "end")  # a model-level check about one field
        elif kind == "value_error" and (untimed := _UNTIMED.search(message)):
            loc = (*loc, "knowledgePoints", int(untimed[1]), untimed[2])  # the first untimed point
        if (
            kind not in ("extra_forbidden", "missing")
            and loc[-1:] != ("end",)
            and isinstance(value, _SCALARS)
            and repr(value) not in message
        ):
            shown = repr(value)
            if len(shown) > MAX_SHOWN_VALUE:
                shown = shown[:MAX_SHOWN_VALUE] + f"... ({len(str(value))} characters)"
            message += f" (got {shown})"
        full = path_to_loc(prefix) + loc
        problems.append(
            Problem(loc_to_path(full), message, line_of(full) if line_of is not None else None)
        )
    return problems


@dataclass
class LoadedJob:
    """A checked job: the model, its transcript (None when at a URL) and its plan."""

    job: VideoProcessingJob
    document: Document
    transcript: Transcript | None = None
    plan: SegmentPlan | None = None
    notes: list[str] = field(default_factory=list)


def _is_job(doc: Document) -> bool:
    return doc.kind == KIND or (doc.kind is None and isinstance(doc.data, dict))


def _validate_job(doc: Document) -> VideoProcessingJob:
    if not isinstance(doc.data, dict):
        raise InvalidSpec(
            Problem(
                "document",
                f"expected a {KIND} mapping, got {type(doc.data).__name__}",
                doc.line_of(()),
            )
        )
    missing = [
        Problem(
            key,
            f"required field is missing (kubectl needs it); expected {value!r}",
            doc.line_of(()),
        )
        for key, value in (("apiVersion", API_VERSION), ("kind", KIND))
        if key not in doc.data
    ]
    try:
        job = VideoProcessingJob.from_manifest(doc.data)
    except ValidationError as exc:
        problems = problems_from_validation_error(exc, "", line_of=doc.line_of)
        raise InvalidSpec(missing + problems) from None
    if missing:
        raise InvalidSpec(missing)
    return job


def load_manifests(path: Path) -> list[VideoProcessingJob]:
    """Every ``VideoProcessingJob`` in a (multi-document) YAML file, validated.

    Raises:
        InvalidSpec: with every problem of every job in the file.
    """
    problems: list[Problem] = []
    jobs = []
    for doc in read_documents(path):
        if not _is_job(doc):
            continue
        try:
            jobs.append(_validate_job(doc))
        except InvalidSpec as exc:
            problems += exc.problems
    if problems:
        raise InvalidSpec(problems)
    return jobs


def _shift(problems: Sequence[Problem], offset: int | None, label: str) -> list[Problem]:
    """Transcript problems with lines moved into the manifest file (or marked as text lines)."""
    out = []
    for p in problems:
        if p.line is None:
            out.append(Problem(label, p.message))
        elif offset is not None:
            out.append(Problem(label, p.message, p.line + offset))
        else:
            out.append(Problem(label, f"transcript line {p.line}: {p.message}"))
    return out


def _load_transcript(
    doc: Document, job: VideoProcessingJob, path: Path, docs: Sequence[Document]
) -> Transcript | None:
    source = job.spec.transcript
    if source is None or source.url is not None or source.from_source is not None:
        return None
    fmt = source.format
    if source.inline is not None:
        label = "spec.transcript.inline"
        offset = doc.literal_offset(("spec", "transcript", "inline"))
        text = source.inline
    else:
        ref = source.config_map_key_ref
        assert ref is not None
        label = f"ConfigMap/{ref.name}[{ref.key}]"
        value, offset = _config_map_value(ref.name, ref.key, docs)
        if isinstance(value, bytes):  # binaryData: bytes in some encoding
            text = decode_transcript(value, source.encoding, source=label)
        elif value is not None:
            text = value
        else:
            # The key is a plain file name (the model refuses '/' and '..'); still, only ever
            # read a regular file directly next to the manifest, never somewhere else: not
            # through a symlink out of the folder (`ln -s /proc/self/environ captions.vtt` in a
            # pull request), not a FIFO or a device.
            directory = Path(path).absolute().parent
            sibling = directory / ref.key
            if sibling.is_symlink() and sibling.resolve().parent != directory.resolve():
                raise InvalidSpec(
                    Problem(
                        "spec.transcript.configMapKeyRef",
                        f"{ref.key!r} next to the manifest is a symlink out of its folder; "
                        "only files in the manifest's own folder are read",
                        doc.line_of(("spec", "transcript", "configMapKeyRef")),
                    )
                )
            if sibling.parent != directory or not sibling.is_file():
                raise InvalidSpec(
                    Problem(
                        "spec.transcript.configMapKeyRef",
                        f"ConfigMap {ref.name!r} with key {ref.key!r} is not in this file, and "
                        f"there is no file {ref.key!r} next to it",
                        doc.line_of(("spec", "transcript", "configMapKeyRef")),
                    )
                )
            size = sibling.stat().st_size
            if size > MAX_TRANSCRIPT_BYTES:
                raise InvalidSpec(
                    Problem(
                        ref.key,
                        f"the transcript is {size} bytes, over the limit of "
                        f"{MAX_TRANSCRIPT_BYTES} bytes (MAX_TRANSCRIPT_BYTES)",
                    )
                )
            label, offset = ref.key, 0
            data = _read_in_folder(sibling.resolve(), directory)
            text = decode_transcript(data, source.encoding, source=label)
    try:
        transcript = parse_transcript(text, fmt, source=label)
    except TranscriptError as exc:
        raise TranscriptError(_shift(exc.problems, offset, label)) from None
    if source.language:
        transcript = transcript.model_copy(update={"language": source.language})
    return transcript


def _read_in_folder(file: Path, directory: Path) -> bytes:
    """The bytes of ``file``, a regular file in ``directory`` (opened without following a
    symlink, so one swapped in after the checks above is refused too), bounded."""
    problem = Problem("spec.transcript.configMapKeyRef", f"{file.name!r}: not a regular file "
                      "in the manifest's folder")  # fmt: skip
    if file.parent != directory.resolve():
        raise InvalidSpec(problem)
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        raise InvalidSpec(problem) from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidSpec(problem)
        raw = fh.read(MAX_TRANSCRIPT_BYTES + 1)
    if len(raw) > MAX_TRANSCRIPT_BYTES:
        raise InvalidSpec(
            Problem(file.name, f"the transcript is over the limit of {MAX_TRANSCRIPT_BYTES} "
                    "bytes (MAX_TRANSCRIPT_BYTES)")
        )  # fmt: skip
    return raw


def _config_map_value(
    name: str, key: str, docs: Sequence[Document]
) -> tuple[str | bytes | None, int | None]:
    """The key's text (``data``) or bytes (``binaryData``, base64) and, for text, the offset of
    its lines in the manifest."""
    for doc in docs:
        data = doc.data if isinstance(doc.data, dict) else {}
        if doc.kind == "ConfigMap" and (data.get("metadata") or {}).get("name") == name:
            values = data.get("data") or {}
            if key in values and isinstance(values[key], str):
                return values[key], doc.literal_offset(("data", key))
            binary = data.get("binaryData") or {}
            if key in binary and isinstance(binary[key], str):
                try:
                    return base64.b64decode(binary[key], validate=True), 0
                except ValueError:
                    raise InvalidSpec(
                        Problem(
                            f"ConfigMap/{name}.binaryData[{key}]",
                            "not valid base64",
                            doc.line_of(("binaryData", key)),
                        )
                    ) from None
    return None, None


def _with_lines(problems: Sequence[Problem], doc: Document) -> list[Problem]:
    return [
        Problem(p.path, p.message, doc.line_of(path_to_loc(p.path)))
        if p.line is None and p.path.startswith("spec")
        else p
        for p in problems
    ]


SOURCE_INFO_HINT = (
    "chapters or captions, which the worker gets from yt-dlp; to plan offline, save yt-dlp's "
    "info JSON (yt-dlp --skip-download --write-info-json --write-subs --write-auto-subs URL) "
    "and give it with --source-info"
)
SOURCE_INFO_NOTE = "planned by the worker from the source's " + SOURCE_INFO_HINT


class NeedsSourceInfo(NeedsTranscript):
    """The plan needs the source's chapters or captions (``fromChapters``/``fromSource``)."""


SourceInfoInput = tuple[Mapping[str, Any], Callable[[CaptionTrack], str]]
"""A yt-dlp info dict and a function that reads a chosen caption track's text."""


def _source_info_field(spec: VideoProcessingJobSpec) -> str:
    if spec.segmentation.from_chapters:
        return "spec.segmentation.fromChapters"
    return "spec.transcript.fromSource"


def _info_duration(info: Mapping[str, Any]) -> float | None:
    value = info.get("duration")
    return float(value) if isinstance(value, int | float) and value > 0 else None


def read_source_info(path: Path) -> SourceInfoInput:
    """A saved yt-dlp info JSON (``--write-info-json`` or ``-j``) and a caption reader for it.

    Caption text is taken, in order, from the track's inline ``data``, the file yt-dlp wrote
    for it (``requested_subtitles[lang].filepath``, relative to the JSON), or a ``url`` that is
    a local path or ``file://``; an http(s) URL is fetched (at most 16 MiB).

    Raises:
        InvalidSpec: the file is not a JSON object, or a caption cannot be read.
    """
    import json
    import urllib.request
    from urllib.parse import unquote, urlsplit

    label = str(path)
    try:
        info = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidSpec(Problem("--source-info", f"{label}: {exc}")) from None
    if not isinstance(info, dict):
        raise InvalidSpec(Problem("--source-info", f"{label}: not a yt-dlp info JSON object"))
    base = Path(path).absolute().parent
    limit = 16 * 1024 * 1024

    def read(track: CaptionTrack) -> str:
        if track.data is not None:
            return track.data
        requested = (info.get("requested_subtitles") or {}).get(track.language) or {}
        candidates = [requested.get("filepath")]
        url = track.url or ""
        parts = urlsplit(url)
        if parts.scheme in ("", "file"):
            candidates.append(unquote(parts.path))
        for name in filter(None, candidates):
            file = base / str(name)
            if file.is_file():
                return decode_transcript(file.read_bytes()[:limit], source=str(file))
        if parts.scheme in ("http", "https"):
            try:
                with urllib.request.urlopen(url, timeout=30) as resp:
                    data = bytes(resp.read(limit))
            except OSError as exc:
                raise InvalidSpec(
                    Problem("--source-info", f"captions {track.describe()}: {url}: {exc}")
                ) from None
            return decode_transcript(data, source=f"captions {track.describe()}")
        raise InvalidSpec(
            Problem("--source-info", f"captions {track.describe()}: no file and no data in {label}")
        )

    return info, read


def _check_job(
    doc: Document,
    path: Path,
    docs: Sequence[Document],
    duration: float | None,
    *,
    defer_url: bool,
    source_info: SourceInfoInput | None = None,
) -> LoadedJob:
    """Validate, load the transcript, plan. With ``defer_url``, a plan that needs a transcript
    the worker will download is left to the worker (a note) instead of being an error."""
    job = _validate_job(doc)
    loaded = LoadedJob(job, doc)
    loaded.transcript = _load_transcript(doc, job, path, docs)
    at_url = job.spec.transcript is not None and job.spec.transcript.url is not None
    spec = job.spec
    hints: tuple[float, ...] = ()
    if source_info is not None:
        hints = chapter_hints(spec, source_info[0], duration or _info_duration(source_info[0]))
    if spec.needs_source_info:
        if source_info is None:
            if defer_url:
                loaded.notes.append(SOURCE_INFO_NOTE)
                return loaded
            raise NeedsSourceInfo(
                Problem(_source_info_field(spec), "needs the source's " + SOURCE_INFO_HINT)
            )
        info, read = source_info
        try:
            resolved = resolve_from_source(
                spec, info, loaded.transcript, read, duration or _info_duration(info)
            )
        except InvalidSpec as exc:
            raise type(exc)(_with_lines(exc.problems, doc)) from None
        spec, loaded.transcript = resolved.spec, resolved.transcript
        duration = duration or _info_duration(info)
    try:
        loaded.plan = plan_segments(spec, loaded.transcript, duration, hints)
    except NeedsTranscript as exc:
        if at_url and defer_url:
            loaded.notes.append(
                "planned by the worker, which downloads the transcript ("
                + "; ".join(p.message for p in exc.problems)
                + ")"
            )
            return loaded
        problems = _with_lines(exc.problems, doc)
        if at_url:
            problems.append(
                Problem(
                    "spec.transcript.url",
                    "the worker downloads this transcript; to plan locally, save it and give "
                    "it inline or by configMapKeyRef",
                    doc.line_of(("spec", "transcript", "url")),
                )
            )
        raise NeedsTranscript(problems) from None
    except PlanError as exc:
        raise PlanError(_with_lines(exc.problems, doc)) from None
    return loaded


def check_file(path: Path, duration: float | None = None) -> list[LoadedJob]:
    """Validate every job in a file: models, transcript, plan.

    Raises:
        InvalidSpec: with every problem found (one per job at most for transcripts and plans).
    """
    docs = read_documents(path)
    problems: list[Problem] = []
    loaded = []
    jobs = [d for d in docs if _is_job(d)]
    for doc in docs:
        if doc.kind not in (KIND, "ConfigMap", None):
            problems.append(
                Problem(
                    "kind",
                    f"{doc.kind!r} is not supported here; expected {KIND} or ConfigMap",
                    doc.line_of(("kind",)),
                )
            )
    if not jobs:
        problems.append(Problem("kind", f"no {KIND} in {path}"))
    for doc in jobs:
        try:
            loaded.append(_check_job(doc, path, docs, duration, defer_url=True))
        except InvalidSpec as exc:
            problems += exc.problems
    problems += destination_collisions(loaded)
    if problems:
        raise InvalidSpec(problems)
    return loaded


def destination_of(job: VideoProcessingJob) -> tuple[str, ...]:
    """Where a job publishes (backend, claim or endpoint and bucket, directory or prefix)."""
    namespace = job.metadata.namespace or "default"
    name = job.metadata.name or ""
    storage = job.spec.output.storage
    if storage.pvc is not None:
        return ("pvc", storage.pvc.claim_name, storage.pvc.directory(namespace, name))
    assert storage.s3 is not None
    s3 = storage.s3
    return ("s3", s3.endpoint or "", s3.bucket, s3.key_prefix(namespace, name))


def destination_collisions(jobs: Sequence[LoadedJob]) -> list[Problem]:
    """A problem for every job that publishes where an earlier job of the file does: the two
    would overwrite each other's ``manifest.json`` and same-named clips."""
    problems = []
    seen: dict[tuple[str, ...], str] = {}
    for loaded in jobs:
        where = destination_of(loaded.job)
        name = loaded.job.metadata.name or "(unnamed)"
        if where in seen:
            field = "spec.output.storage." + where[0]
            shown = "/".join(p for p in where[1:] if p) or "the root"
            problems.append(
                Problem(
                    field,
                    f"{name} publishes to the same place as {seen[where]} ({where[0]} {shown}); "
                    "they would overwrite each other's manifest.json and clips: give each its "
                    "own path/prefix (or leave it out: the default is <namespace>/<name>)",
                    loaded.document.line_of(tuple(path_to_loc(field))),
                )
            )
        else:
            seen[where] = name
    return problems


def load_job(
    path: Path, duration: float | None = None, source_info: SourceInfoInput | None = None
) -> tuple[VideoProcessingJob, Transcript | None, SegmentPlan]:
    """The one job in a manifest file, its transcript and its plan.

    The transcript is resolved from ``inline``, or ``configMapKeyRef`` (a ConfigMap in the same
    file, else a file next to the manifest named after the key); a ``url`` transcript is not
    fetched, so the plan is made without it and a plan that needs it raises
    :class:`~videojobs.planning.NeedsTranscript`. A job that plans from the source's chapters
    or captions needs ``source_info`` (:func:`read_source_info`), else raises
    :class:`NeedsSourceInfo`.

    Raises:
        InvalidSpec: (TranscriptError, PlanError) with problems naming fields and lines.
    """
    docs = read_documents(path)
    jobs = [d for d in docs if _is_job(d)]
    if len(jobs) != 1:
        raise InvalidSpec(
            Problem("kind", f"expected exactly one {KIND} in {path}, found {len(jobs)}")
        )
    loaded = _check_job(jobs[0], path, docs, duration, defer_url=False, source_info=source_info)
    assert loaded.plan is not None
    return loaded.job, loaded.transcript, loaded.plan
