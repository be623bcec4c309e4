"""The ``VideoProcessingJob`` spec: what the user asks for.

The CRD in ``crds/`` is generated from these models (``videojobs crd``). Cross-field rules that
the API server can check are declared once, as CEL in ``x-kubernetes-validations``, and again as
pydantic validators so that ``videojobs validate`` and the operator give the same answer.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator
from pydantic.json_schema import JsonDict

from videojobs.models.base import DurationValue, Identifier, Model, TimeValue
from videojobs.naming import check_template

TranscriptFormat = Literal[
    "auto",
    "webvtt",
    "srt",
    "sbv",
    "json",
    "whisper-json",
    "whisper-cpp-json",
    "aws-transcribe-json",
    "youtube-json3",
    "youtube-srv3",
    "ttml",
    "sami",
    "ass",
    "ssa",
    "seed-json",
]
OutputFormat = Literal["mp4", "webm", "auto", "m4a", "mp3", "opus", "flac", "wav"]
Precision = Literal["copy", "accurate", "smart"]
OverlapPolicy = Literal["merge", "trim", "allow", "reject"]
ShortSegmentPolicy = Literal["merge", "reject", "keep"]
PartialDownload = Literal["auto", "always", "never"]

NAMING_FIELDS = ("index", "knowledge_id", "title", "start", "end")
"""Placeholders a naming template may use (Python format syntax, e.g. ``{index:02d}``)."""

HTTP_HEADERS_ALLOWED = ("Referer", "User-Agent", "Accept-Language")
"""The only HTTP headers a resource may set for its source (no credentials, no hop-by-hop)."""
HTTP_HEADER_MAX = 1024
"""Longest header value."""

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


# -- paths and keys a tenant gives -------------------------------------------------------------

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_CEL_NO_CONTROL = "!self.{f}.matches('[\\\\x00-\\\\x1f\\\\x7f]')"
_CEL_NO_CLIMB = "!self.{f}.startsWith('/') && !self.{f}.matches('(^|/)[.][.](/|$)')"


def _relative_path_rule(field: str, what: str) -> JsonDict:
    return _cel(
        f"!has(self.{field}) || ("
        + _CEL_NO_CONTROL.format(f=field)
        + " && "
        + _CEL_NO_CLIMB.format(f=field)
        + ")",
        f"{what} must be relative, without '..' segments or control characters",
        fieldPath=f".{field}",
    )


def clean_relative_path(value: str, what: str = "path") -> str:
    """``value`` as a normalised relative path (``a//b/./c/`` -> ``a/b/c``).

    Raises:
        ValueError: NUL or another control character, an absolute path (``/...``), or a ``..``
            segment (climbing out of the tenant's directory or prefix).
    """
    if _CONTROL_RE.search(value):
        raise ValueError(f"{what} must not contain NUL or other control characters")
    if value.startswith("/"):
        raise ValueError(f"{what} must be relative, not start with '/'")
    parts = value.split("/")
    if ".." in parts:
        raise ValueError(f"{what} must not contain '..' segments")
    return "/".join(p for p in parts if p not in ("", "."))


KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
"""A ConfigMap or Secret key as Kubernetes allows it (no ``/``, so never a path)."""

_NOT_DOTS = "self.key != '.' && self.key != '..'"


def _plain_key(key: str) -> str:
    if key in (".", ".."):
        raise ValueError("key must not be '.' or '..'")
    return key


# Addresses that are never an S3 endpoint: link-local (cloud metadata lives there) and the
# well-known metadata addresses outside it. Loopback and private ranges are left to the worker's
# network guard (cluster mode) or the operator's list of allowed endpoints.
_METADATA_IPS = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "169.254.170.23", "fd00:ec2::254", "fd00:ec2::23",
              "100.100.100.200")
)  # fmt: skip
_METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})


def check_endpoint(url: str) -> str:
    """An S3 endpoint URL: ``http(s)://host[:port][/path]``, no credentials, not a metadata or
    link-local address. Raises ValueError."""
    if _CONTROL_RE.search(url):
        raise ValueError("endpoint must not contain control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ValueError(f"endpoint is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("endpoint must be an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("endpoint must not carry credentials; use credentialsSecretRef")
    if parts.query or parts.fragment:
        raise ValueError("endpoint must not have a query or fragment")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise ValueError("endpoint has no host")
    if host in _METADATA_NAMES:
        raise ValueError(f"endpoint {host} is a cloud metadata service")
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return url
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in _METADATA_IPS:
        raise ValueError(f"endpoint {host} is a cloud metadata address")
    if address.is_link_local or address.is_unspecified or address.is_multicast:
        raise ValueError(f"endpoint {host} is a link-local, unspecified or multicast address")
    return url


class SecretKeyRef(Model):
    """A key in a Secret in the resource's namespace."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(_NOT_DOTS, "key must not be '.' or '..'", fieldPath=".key")
            ]
        }
    )

    name: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(
        description="Name of the Secret."
    )
    key: Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=KEY_PATTERN)] = (
        Field(description="Key within the Secret (letters, digits, '-', '_', '.').")
    )

    @field_validator("key")
    @classmethod
    def _plain(cls, key: str) -> str:
        return _plain_key(key)


class ConfigMapKeyRef(Model):
    """A key in a ConfigMap in the resource's namespace."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(_NOT_DOTS, "key must not be '.' or '..'", fieldPath=".key")
            ]
        }
    )

    name: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(
        description="Name of the ConfigMap."
    )
    key: Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=KEY_PATTERN)] = (
        Field(description="Key within the ConfigMap (letters, digits, '-', '_', '.').")
    )

    @field_validator("key")
    @classmethod
    def _plain(cls, key: str) -> str:
        return _plain_key(key)


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
    http_headers: (
        dict[str, Annotated[str, StringConstraints(min_length=1, max_length=HTTP_HEADER_MAX)]]
        | None
    ) = Field(
        default=None,
        max_length=len(HTTP_HEADERS_ALLOWED),
        description="HTTP headers sent with every request for the video, for sources that play "
        "only embedded (e.g. Vimeo's domain-restricted embeds): only "
        + ", ".join(HTTP_HEADERS_ALLOWED)
        + ".",
    )

    @field_validator("http_headers")
    @classmethod
    def _allowed_headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        canonical = {h.lower(): h for h in HTTP_HEADERS_ALLOWED}
        headers: dict[str, str] = {}
        for name, text in value.items():
            if name.lower() not in canonical:
                raise ValueError(
                    f"header {name!r} is not allowed (only {', '.join(HTTP_HEADERS_ALLOWED)})"
                )
            if any(ord(c) < 32 or ord(c) == 127 for c in text):
                raise ValueError(f"header {name!r}: control characters are not allowed")
            headers[canonical[name.lower()]] = text
        return headers


LanguagePattern = Annotated[
    str, StringConstraints(min_length=1, max_length=35, pattern=r"^[A-Za-z0-9*?_-]+$")
]
"""A caption language code or glob: ``en``, ``en-*``, ``pt-BR``, ``*``."""


class CaptionsFromSource(Model):
    """Use the source's own captions (uploaded or automatic) as the transcript."""

    languages: list[LanguagePattern] = Field(
        default_factory=lambda: ["en", "en-*"],
        min_length=1,
        max_length=20,
        description="Languages to look for, in order; codes or globs such as en-* or *.",
    )
    automatic: bool = Field(
        default=True,
        description="Also accept automatic (speech-recognised) captions when no uploaded ones "
        "match; their rolling duplicates are merged.",
    )
    prefer_automatic: bool = Field(
        default=False,
        description="For a language that has both, take the automatic captions over the "
        "uploaded ones.",
    )


class TranscriptSource(Model):
    """A transcript with timestamps; exactly one of inline, configMapKeyRef, url or fromSource."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    _one_of("inline", "configMapKeyRef", "url", "fromSource"),
                    "transcript needs exactly one of inline, configMapKeyRef, url or fromSource",
                ),
                _cel(
                    "!has(self.encoding) || has(self.configMapKeyRef) || has(self.url)",
                    "encoding applies to a configMapKeyRef or url transcript (inline text and "
                    "the source's captions are text already)",
                ),
            ]
        }
    )

    format: TranscriptFormat = Field(
        default="auto",
        description="auto detects the format from the document (see docs/resource.md, "
        "transcript formats): caption files (WebVTT, SRT, SBV, TTML/DFXP, SAMI, ASS/SSA, YouTube "
        "json3/srv3), speech-to-text JSON (Whisper, WhisperX, faster-whisper, whisper.cpp, AWS "
        "Transcribe), JSON cue lists and the seed JSON document (transcript + knowledge_points).",
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
        default=None,
        max_length=4096,
        pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\x00-\x20\x7f]+$",
        description="An http(s) URL the worker downloads.",
    )
    from_source: CaptionsFromSource | None = Field(
        default=None,
        description="The source's own captions, fetched by the worker with yt-dlp (uploaded "
        "before automatic, WebVTT preferred); format is then detected.",
    )
    language: str | None = Field(
        default=None, max_length=35, description="BCP 47 language tag, written into subtitles."
    )
    encoding: str | None = Field(
        default=None,
        min_length=1,
        max_length=40,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
        description="Text encoding of a configMapKeyRef (binaryData) or url transcript, a Python "
        "codec name such as windows-1252, latin-1, big5, gb2312 or utf-16. Unset: a byte order "
        "mark, else UTF-8, else the encoding detected (charset-normalizer); see "
        "docs/resource.md, transcript encodings.",
    )

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is not None and not is_text_codec(value):
            raise ValueError(
                f"unknown text encoding {value!r}; expected a codec name such as utf-8, "
                "windows-1252, latin-1, windows-1250, big5, gb2312 or utf-16"
            )
        return value

    @model_validator(mode="after")
    def _exactly_one_source(self) -> TranscriptSource:
        names = ("inline", "config_map_key_ref", "url", "from_source")
        given = [n for n in names if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                "transcript needs exactly one of inline, configMapKeyRef, url or fromSource"
            )
        if self.encoding is not None and self.config_map_key_ref is None and self.url is None:
            raise ValueError(
                "encoding applies to a configMapKeyRef or url transcript (inline text and "
                "the source's captions are text already)"
            )
        return self


def is_text_codec(name: str) -> bool:
    """True when ``name`` is a codec Python knows that decodes bytes to text."""
    import codecs

    try:
        info = codecs.lookup(name)
    except LookupError:
        return False
    return bool(getattr(info, "_is_text_encoding", True))


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


class AutoSegmentation(Model):
    """Find the knowledge points in the transcript itself (``segmentation.auto``).

    Used when neither the spec nor a seed-json transcript lists knowledge points (those win);
    see :mod:`videojobs.segmentation` and docs/resource.md.
    """

    min_duration: DurationValue = Field(
        default=60,
        description="Shortest proposed clip (at least 10 s; default 1 minute).",
    )
    max_duration: DurationValue = Field(
        default=1800,
        description="Longest proposed clip (default 30 minutes); a longer topic is split.",
    )
    target_count: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Propose exactly this many clips when the lengths allow it; absent: as "
        "many as there are clear topic changes.",
    )
    language: str | None = Field(
        default=None,
        max_length=35,
        pattern=r"^[A-Za-z0-9-]+$",
        description="Language of the transcript (BCP 47, e.g. en); default: transcript.language. "
        "English gets stop words and plural folding, other languages a frequency rule.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> AutoSegmentation:
        if self.min_duration < 10:
            raise ValueError(f"minDuration ({self.min_duration:g}s) must be at least 10s")
        if self.max_duration < 2 * self.min_duration:
            raise ValueError(
                f"maxDuration ({self.max_duration:g}s) must be at least twice minDuration "
                f"({self.min_duration:g}s)"
            )
        return self


class Segmentation(Model):
    """How knowledge points and segments become clips."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.auto) || !has(self.fromChapters) || !self.fromChapters",
                    "segmentation.auto and segmentation.fromChapters cannot be combined",
                )
            ]
        }
    )

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
    from_chapters: bool = Field(
        default=False,
        description="Cut the source by its own chapters (yt-dlp's, or the container's for "
        "direct files), each clip titled by its chapter; no segments or knowledgePoints then.",
    )
    chapter_titles: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] | None = (
        Field(
            default=None,
            max_length=50,
            description="With fromChapters: keep only chapters whose title matches one of these "
            "case-insensitive globs (e.g. 'Part *').",
        )
    )
    auto: AutoSegmentation | None = Field(
        default=None,
        description="Propose the knowledge points from the transcript (topic changes, titles "
        "from each topic's own words) when none are given; needs a transcript.",
    )

    @model_validator(mode="after")
    def _auto_or_chapters(self) -> Segmentation:
        if self.auto is not None and self.from_chapters:
            raise ValueError("segmentation.auto and segmentation.fromChapters cannot be combined")
        return self


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
        json_schema_extra={"x-kubernetes-validations": [_relative_path_rule("path", "path")]}
    )

    claim_name: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(
        description="Name of the PersistentVolumeClaim (ReadWriteMany for shared access)."
    )
    path: Annotated[str, StringConstraints(max_length=1024)] | None = Field(
        default=None,
        description="Directory inside the volume (relative, no '..'); default "
        "'<namespace>/<name>', unique per resource; '' is the volume's root.",
    )

    @field_validator("path")
    @classmethod
    def _relative(cls, path: str | None) -> str | None:
        return None if path is None else clean_relative_path(path, "path")

    def directory(self, namespace: str, name: str) -> str:
        """The directory clips go to: ``path``, or ``<namespace>/<name>`` when not given."""
        return self.path if self.path is not None else default_destination(namespace, name)


def default_destination(namespace: str, name: str) -> str:
    """The per-resource default of ``pvc.path`` and ``s3.prefix``: ``<namespace>/<name>``."""
    return clean_relative_path(f"{namespace}/{name}", "destination")


class S3Storage(Model):
    """Clips go to an S3-compatible object store."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [_relative_path_rule("prefix", "prefix")]}
    )

    bucket: Annotated[
        str,
        StringConstraints(
            min_length=3, max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]$"
        ),
    ] = Field(description="Bucket name.")
    prefix: Annotated[str, StringConstraints(max_length=1024)] | None = Field(
        default=None,
        description="Key prefix, e.g. courses/k8s (relative, no '..'); default "
        "'<namespace>/<name>', unique per resource; '' is the bucket's root.",
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

    @field_validator("prefix")
    @classmethod
    def _relative(cls, prefix: str | None) -> str | None:
        return None if prefix is None else clean_relative_path(prefix, "prefix")

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, bucket: str) -> str:
        if ".." in bucket:
            raise ValueError("bucket must not contain '..'")
        return bucket

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, endpoint: str | None) -> str | None:
        return None if endpoint is None else check_endpoint(endpoint)

    def key_prefix(self, namespace: str, name: str) -> str:
        """The key prefix clips go to: ``prefix``, or ``<namespace>/<name>`` when not given."""
        return self.prefix if self.prefix is not None else default_destination(namespace, name)


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
        description="Container formats: mp4 (H.264/AAC) and/or webm (VP9/Opus); auto: like "
        "the source (an audio-only source: m4a for AAC, mp3, opus (Ogg) or webm for Opus, flac, "
        "wav; a video source: mp4). m4a, mp3, opus, flac and wav hold audio only and need an "
        "audio-only source; an audio-only source cut to mp4 or webm gives audio-only MP4/WebM.",
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
        check_template(naming, NAMING_FIELDS)
        return naming


class WorkerResources(Model):
    """Compute resources and scratch space of the worker pod."""

    cpu: str | None = Field(default=None, description="CPU request and limit, e.g. '2'.")
    memory: str | None = Field(default=None, description="Memory request and limit, e.g. 2Gi.")
    scratch_size: str | None = Field(
        default=None, description="Size limit of the scratch volume for the download, e.g. 20Gi."
    )


_FROM_CHAPTERS = (
    "has(self.segmentation) && has(self.segmentation.fromChapters) && "
    "self.segmentation.fromChapters"
)


class VideoProcessingJobSpec(Model):
    """The desired state of a VideoProcessingJob."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    f"({_FROM_CHAPTERS}) ? (!has(self.segments) && "
                    "(!has(self.knowledgePoints) || size(self.knowledgePoints) == 0)) "
                    ": (has(self.segments) ? !has(self.transcript) : (has(self.transcript) || "
                    "(has(self.knowledgePoints) && size(self.knowledgePoints) > 0 && "
                    "self.knowledgePoints.all(k, has(k.start) && has(k.end)))))",
                    "give exactly one of segments (explicit ranges), transcript or "
                    "segmentation.fromChapters (which takes no segments or knowledgePoints); "
                    "without a transcript every knowledge point needs start and end",
                ),
                _cel(
                    "has(self.transcript) || !has(self.segmentation) || "
                    "!has(self.segmentation.auto)",
                    "segmentation.auto goes with a transcript, not with explicit segments nor "
                    "without a transcript",
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
        description="A timed transcript; knowledge points are mapped onto it. Not needed "
        "when every knowledge point has start and end (the clips are cut as given).",
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
    parallelism: int | None = Field(
        default=None,
        ge=1,
        le=16,
        description="Cut with this many pods at once: the clips are split into balanced shares "
        "by duration, one Indexed Job pod per share, each downloading only its ranges "
        "(backoffLimit applies per share). Absent: 1, or the operator's default for long plans.",
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

    @property
    def needs_source_info(self) -> bool:
        """True when the plan needs the source's chapters or captions (only the worker, which
        asks yt-dlp, can plan it; the operator never downloads)."""
        return self.segmentation.from_chapters or (
            self.transcript is not None and self.transcript.from_source is not None
        )

    @model_validator(mode="after")
    def _segmentation_mode(self) -> VideoProcessingJobSpec:
        if self.segmentation.from_chapters:
            if self.segments is not None or self.knowledge_points:
                raise ValueError(
                    "segmentation.fromChapters makes the segments: give no segments or "
                    "knowledgePoints with it"
                )
            return self
        if self.segmentation.chapter_titles is not None:
            raise ValueError("segmentation.chapterTitles needs segmentation.fromChapters: true")
        if self.segments is not None and self.transcript is not None:
            raise ValueError(
                "give exactly one of segments (explicit ranges), transcript or "
                "segmentation.fromChapters"
            )
        if self.segments is not None and self.knowledge_points:
            raise ValueError("knowledgePoints go with a transcript, not with explicit segments")
        if self.segments is not None and self.segmentation.auto is not None:
            raise ValueError("segmentation.auto goes with a transcript, not with explicit segments")
        if self.transcript is None and self.segmentation.auto is not None:
            raise ValueError("segmentation.auto goes with a transcript, not without one")
        if self.segments is None and self.transcript is None:
            self._explicit_points_only()
        return self

    def _explicit_points_only(self) -> None:
        """Without a transcript (and no segments), every knowledge point carries its own times."""
        if not self.knowledge_points:
            raise ValueError(
                "give exactly one of segments (explicit ranges), transcript or "
                "segmentation.fromChapters (or knowledgePoints that all have start and end)"
            )
        untimed = [
            (i, "start" if k.start is None else "end")
            for i, k in enumerate(self.knowledge_points)
            if k.start is None or k.end is None
        ]
        if untimed:
            (i, missing), more = untimed[0], len(untimed) - 1
            raise ValueError(
                f"without a transcript every knowledge point needs start and end "
                f"(knowledgePoints[{i}] has no {missing}"
                + (f"; {more} more points lack times)" if more else ")")
            )

    @field_validator("knowledge_points")
    @classmethod
    def _unique_ids(cls, points: list[KnowledgePoint]) -> list[KnowledgePoint]:
        ids = [k.id for k in points]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"knowledge point id {dupes[0]!r} is used more than once")
        return points
