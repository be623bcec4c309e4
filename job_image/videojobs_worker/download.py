"""Downloading the source with yt-dlp's Python API.

- :func:`build_ydl_opts` turns our few knobs into yt-dlp's options dict (pure, unit-tested).
- :func:`classify_download_error` maps a yt-dlp failure to a :class:`WorkerError` with one of the
  documented exit codes (``docs/worker-contract.md``).
- :func:`plan_ranges` / :func:`want_partial` decide whether to fetch only the time ranges the
  plan needs (pure).
- :class:`Downloader` runs yt-dlp under the network guard, retries transient failures with
  exponential backoff, reports progress and honours a stop event.

Ranged downloads use yt-dlp's ``download_ranges``: yt-dlp then hands the media URL to ffmpeg
(``-ss S -t D -i URL -c copy``), which reads only the byte ranges it needs from a server that
honours HTTP Range, or only the HLS segments it needs. One file per range. ffmpeg is told to keep
the source's timestamps (``-copyts -start_at_zero``): with its default, the range's time zero is
S, the frames from the keyframe before S are hidden behind an MP4 edit list starting mid-GOP, or
(WebM, no edit lists) every timestamp is shifted by an amount the file does not record, and
clips cut from it were wrong (issue 23). :func:`normalise_range` then rewrites each range file
(stream copy) so that it starts at its first packet: time zero is ``DownloadedPart.start``, a
millisecond at or before the first keyframe, and nothing is hidden.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from videojobs.errors import InvalidSpec
from videojobs.models import ExitCode
from videojobs_worker.errors import WorkerError, exception_chain
from videojobs_worker.guard import (
    BlockedAddressError,
    GuardProxy,
    NetworkPolicy,
    find_blocked,
    guarded,
    last_blocked,
)
from videojobs_worker.jsruntime import (
    FIX_HINT,
    JsRuntime,
    RuntimeNotFound,
    find_js_runtime,
    runtime_env,
    ydl_js_options,
)

log = logging.getLogger(__name__)

RANGE_MARGIN = 2.0
"""Seconds fetched before and after each planned segment (keyframe slack, rounding)."""
RANGE_MERGE_GAP = 30.0
"""Ranges closer than this are fetched as one (one more connection costs more than a gap)."""
AUTO_PARTIAL_MIN_DURATION = 60.0
"""``partialDownload: auto`` only considers sources at least this long..."""
AUTO_PARTIAL_MAX_FRACTION = 0.5
"""...whose planned ranges (with margins) cover at most this fraction of the source."""
MP4_TIMESCALE_ARGS = ("-movie_timescale", "90000")
"""An MP4's start offset (an empty edit) is written in the movie timescale: ffmpeg's default
of 1000 would round it to the millisecond, this to 11 microseconds."""


def range_ffmpeg_args(protocol: str) -> list[str]:
    """Output options of yt-dlp's ffmpeg for a range of a format: the source's timestamps.

    A direct file's timestamps are the source times the cutter works with (as in a whole
    download); an HLS stream's start where its first segment does (MPEG-TS: not at 0), and a
    whole HLS download is remuxed to start at 0, so ranges of it are too (``-start_at_zero``).
    """
    args = ["-copyts", *MP4_TIMESCALE_ARGS]
    if "m3u8" in protocol:
        args.insert(1, "-start_at_zero")
    return args


def with_range_args(info: dict[str, Any]) -> dict[str, Any]:
    """``info`` with :func:`range_ffmpeg_args` in every format's downloader options."""

    def add(fmt: dict[str, Any]) -> dict[str, Any]:
        options = dict(fmt.get("downloader_options") or {})
        options["ffmpeg_args_out"] = range_ffmpeg_args(str(fmt.get("protocol") or ""))
        return {**fmt, "downloader_options": options}

    out = add(info)
    if info.get("formats"):
        out["formats"] = [add(f) for f in info["formats"]]
    return out


TRANSCRIPT_MAX_BYTES = 16 * 1024 * 1024
FRAGMENT_RETRIES = 3
"""Retries of one HLS/DASH fragment before the download fails (not skipped: never truncated)."""
FRAGMENT_RETRY_SLEEP_CAP = 4.0
"""Longest wait between two tries of a fragment: a missing fragment fails in seconds."""
TRUNCATION_TOLERANCE = 0.02
"""A downloaded source may be this fraction (at least ``TRUNCATION_MIN_SECONDS``) shorter than
the site or playlist said before it counts as truncated."""
TRUNCATION_MIN_SECONDS = 2.0


@dataclass(frozen=True)
class DownloadProgress:
    """One progress report from yt-dlp."""

    downloaded_bytes: int
    total_bytes: int | None
    eta_seconds: float | None
    speed: float | None


@dataclass(frozen=True)
class DownloadedPart:
    """One downloaded file and where it sits in the source."""

    path: Path
    start: float = 0.0
    """Source time of the file's time zero (0 for a full download)."""
    end: float | None = None
    """Source time where the file ends (``None``: end of the source)."""


@dataclass
class Downloaded:
    """What :meth:`Downloader.download` fetched."""

    parts: list[DownloadedPart]
    title: str | None = None
    duration: float | None = None
    """Duration the site reported (HLS: sum of segment lengths; direct URLs: none)."""
    partial: bool = False
    bytes: int = 0
    """Bytes of the files on disk."""
    full_size: int | None = None
    """Size of the whole source, when the server told us (to report bytes saved)."""
    info: dict[str, Any] = field(default_factory=dict)


# -- pure parts --------------------------------------------------------------------------------


def default_format(max_height: int | None) -> str:
    """yt-dlp format selector: best video+audio not higher than ``max_height``.

    ``<=?`` lets formats without a known height through (direct URLs have none); the ordering of
    candidates is left to :func:`format_sort`.
    """
    limit = f"[height<=?{max_height}]" if max_height else ""
    return f"bv*{limit}+ba/b{limit}/bv*+ba/b"


def format_sort(max_height: int | None, outputs: Sequence[str] = ("mp4",)) -> list[str]:
    """Prefer what the ``smart`` cut can stream-copy into every requested output, within
    ``max_height``: H.264 + AAC in MP4 for MP4 clips only; VP9 + Opus (WebM) when WebM clips are
    wanted (VP9 and Opus go into MP4 as well, H.264 and AAC not into WebM). AV1 ranks below
    either (``vcodec:X`` prefers X, then codecs yt-dlp ranks lower)."""
    if "webm" in outputs:
        fields = ["vcodec:vp9", "acodec:opus", "ext:webm", "proto:https"]
    else:
        fields = ["vcodec:h264", "acodec:aac", "ext:mp4:m4a", "proto:https"]
    if max_height:
        fields.insert(0, f"res:{max_height}")
    return fields


def backoff_delays(retries: int, base: float, cap: float = 60.0) -> list[float]:
    """Exponential backoff delays without jitter: ``base, 2*base, 4*base, ...`` up to ``cap``."""
    return [min(cap, base * 2**n) for n in range(retries)]


@dataclass(frozen=True)
class DownloadOptions:
    """How one job's source is downloaded: what its spec and the worker's settings ask of
    yt-dlp (the same for every request of the job)."""

    max_height: int | None = None
    fmt: str | None = None
    """A yt-dlp format selector overriding :func:`default_format`."""
    cookies_file: Path | None = None
    retries: int = 4
    backoff: float = 2.0
    """Seconds before the first retry, doubled each time."""
    socket_timeout: float = 30.0
    http_headers: Mapping[str, str] = field(default_factory=dict)
    """The spec's allow-listed ``source.httpHeaders``."""
    outputs: Sequence[str] = ("mp4",)
    """The job's output formats (they steer :func:`format_sort`)."""


def build_ydl_opts(
    dest_dir: Path,
    options: DownloadOptions = DownloadOptions(),
    *,
    ranges: Sequence[tuple[float, float]] | None = None,
    progress_hooks: Sequence[Callable[[dict[str, Any]], None]] = (),
    logger: Any = None,
    allow_files: bool = False,
    ffmpeg_proxy: str | None = None,
    js_runtime: JsRuntime | None = None,
) -> dict[str, Any]:
    """The yt-dlp options dict (see ``yt_dlp/YoutubeDL.py`` for the meaning of each key).

    ``js_runtime`` is handed to yt-dlp explicitly, with no remote components, so it never
    fetches challenge-solver scripts at run time (they come from the ``yt-dlp-ejs`` package);
    ``None`` disables JavaScript (yt-dlp then says so, and YouTube may offer few formats).
    ``options.http_headers`` go with every request yt-dlp makes, and with the formats it hands
    to ffmpeg.
    """
    import yt_dlp.utils

    retries = options.retries
    stem = "source.%(section_start)s-%(section_end)s" if ranges else "source"
    opts: dict[str, Any] = {
        "format": options.fmt or default_format(options.max_height),
        "format_sort": format_sort(options.max_height, options.outputs),
        "merge_output_format": "mp4/webm/mkv",
        "outtmpl": {"default": f"{stem}.%(ext)s"},
        "paths": {"home": str(dest_dir), "temp": str(dest_dir)},
        "noplaylist": True,
        "playlist_items": "1",
        "quiet": True,
        "no_warnings": False,
        "noprogress": True,
        "progress_hooks": list(progress_hooks),
        "retries": retries,
        "fragment_retries": min(retries, FRAGMENT_RETRIES),
        # A fragment that stays unavailable fails the download (yt-dlp's default skips it and
        # silently yields a truncated source); classify_download_error names the category.
        "skip_unavailable_fragments": False,
        "extractor_retries": min(retries, 3),
        "file_access_retries": 2,
        "retry_sleep_functions": _retry_sleep_functions(options.backoff),
        "socket_timeout": options.socket_timeout,
        # One thread: the network guard is per thread (see guard.py).
        "concurrent_fragment_downloads": 1,
        "cachedir": False,  # read-only root filesystem; nothing worth caching per pod
        "overwrites": True,
        "continuedl": False,
        "check_formats": False,
        "writesubtitles": False,
        "writethumbnail": False,
        "enable_file_urls": allow_files,
        "color": "never",
        **ydl_js_options(js_runtime),
    }
    if options.http_headers:
        opts["http_headers"] = dict(options.http_headers)
    if logger is not None:
        opts["logger"] = logger
    if options.cookies_file is not None:
        opts["cookiefile"] = str(options.cookies_file)
    if ffmpeg_proxy is not None:
        # ffmpeg (ranged downloads) connects through the guard's proxy; yt-dlp itself does not
        opts["external_downloader_args"] = {"ffmpeg_i": ["-http_proxy", ffmpeg_proxy]}
    if ranges:
        opts["download_ranges"] = yt_dlp.utils.download_range_func(None, [tuple(r) for r in ranges])
        opts["force_keyframes_at_cuts"] = False
        # Source timestamps in the range files (per format: see range_ffmpeg_args), and in the
        # merge of separate video and audio ranges; MP4's start offset in a fine timescale.
        opts["postprocessor_args"] = {"merger+ffmpeg": ["-copyts", *MP4_TIMESCALE_ARGS]}
    return opts


def _retry_sleep_functions(backoff: float) -> dict[str, Callable[[int], float]]:
    """yt-dlp's waits before its retries: ``backoff`` doubled each time (capped); none at all
    once the guard refused an address in this thread."""

    def refused() -> None:
        # The guard refused an address in this thread: every retry would be refused too, so
        # stop yt-dlp's own retry loops at once (the refusal is classified BLOCKED_ADDRESS).
        blocked = last_blocked()
        if blocked is not None:
            raise BlockedAddressError(blocked)

    def sleep(n: int) -> float:
        refused()
        return min(60.0, backoff * 2**n)

    def fragment_sleep(n: int) -> float:
        refused()
        return min(FRAGMENT_RETRY_SLEEP_CAP, backoff * 2**n)

    return {"http": sleep, "fragment": fragment_sleep, "extractor": sleep}


def plan_ranges(
    segments: Iterable[tuple[float, float]],
    duration: float | None = None,
    *,
    margin: float = RANGE_MARGIN,
    merge_gap: float = RANGE_MERGE_GAP,
) -> list[tuple[float, float]]:
    """Source time ranges covering every segment plus ``margin``, merged when close."""
    spans = sorted(
        (
            max(0.0, start - margin),
            end + margin if duration is None else min(duration, end + margin),
        )
        for start, end in segments
    )
    merged: list[list[float]] = []
    for start, end in spans:
        if merged and start - merged[-1][1] <= merge_gap:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(round(s, 3), round(e, 3)) for s, e in merged]


def want_partial(mode: str, ranges: Sequence[tuple[float, float]], duration: float | None) -> bool:
    """Whether to download only ``ranges`` (``mode`` is the spec's ``partialDownload``)."""
    if mode == "never" or not ranges:
        return False
    if mode == "always":
        return True
    if duration is None or duration < AUTO_PARTIAL_MIN_DURATION:
        return False
    covered = sum(end - start for start, end in ranges)
    return covered <= AUTO_PARTIAL_MAX_FRACTION * duration


def part_for(parts: Sequence[DownloadedPart], start: float, end: float) -> DownloadedPart:
    """The downloaded part that holds ``[start, end)`` of the source."""
    for part in parts:
        if part.start <= start + 1e-6 and (part.end is None or end <= part.end + 1e-6):
            return part
    raise WorkerError(
        ExitCode.INTERNAL, "RangeNotDownloaded", f"no downloaded range holds {start:g}-{end:g}s"
    )


_PATTERNS: list[tuple[re.Pattern[str], ExitCode, str]] = [
    # A redirect to file:// (or another scheme no handler serves) is refused, and a retry
    # cannot change that: permanent, like every other refusal of the guard.
    (re.compile(r"no connection adapters were found|unsupported url scheme|"
                r"file:// urls are (?:disabled|not allowed)|unsupported request", re.I),
     ExitCode.BLOCKED_ADDRESS, "BlockedScheme"),
    (re.compile(r"no space left on device|disk quota exceeded", re.I),
     ExitCode.NO_SPACE, "NoSpace"),
    # YouTube's bot check ("Sign in to confirm you're not a bot") and captcha walls: only a
    # logged-in session (cookies) gets past them; retrying from the same address does not help.
    (re.compile(r"not a bot|not a robot|captcha", re.I), ExitCode.LOGIN_REQUIRED, "BotCheck"),
    (re.compile(r"embed-only video|embedding URL|domain[- ]restrict", re.I),
     ExitCode.LOGIN_REQUIRED, "EmbedOnly"),
    (re.compile(r"protected by a password|wrong password", re.I),
     ExitCode.LOGIN_REQUIRED, "PasswordProtected"),
    # "This content isn't available, try again later": YouTube's rate limit, which passes
    (re.compile(r"content isn.t available, try again later|rate[- ]limited", re.I),
     ExitCode.NETWORK, "RateLimited"),
    (re.compile(r"private video|video is private|this video is private", re.I),
     ExitCode.PRIVATE, "PrivateVideo"),
    (re.compile(r"confirm your age|age[- ]restricted|inappropriate for some users|age "
                r"verification", re.I), ExitCode.AGE_RESTRICTED, "AgeRestricted"),
    (re.compile(r"available (?:in|from) your (?:country|location|region)|geo[- ]?restrict|"
                r"blocked it in your country", re.I),
     ExitCode.GEO_BLOCKED, "GeoBlocked"),
    (re.compile(r"sign in|log ?in|login required|requires authentication|members[- ]only|"
                r"join this channel|use --cookies", re.I),
     ExitCode.LOGIN_REQUIRED, "LoginRequired"),
    (re.compile(r"unsupported url|no video formats found|no suitable (?:extractor|formats)|"
                r"not a valid url|is not a valid URL", re.I),
     ExitCode.UNSUPPORTED_URL, "UnsupportedUrl"),
    (re.compile(r"did not get any data blocks|downloaded file is empty|empty file", re.I),
     ExitCode.NOT_A_VIDEO, "EmptyFile"),
    (re.compile(r"requested format is not available", re.I), ExitCode.INVALID_SPEC,
     "FormatNotAvailable"),
    (re.compile(r"video unavailable|this video (?:is|has been) (?:unavailable|removed)|"
                r"has been removed|does not exist|no longer available|terminated|"
                r"HTTP Error 404|HTTP Error 410", re.I), ExitCode.UNAVAILABLE, "VideoUnavailable"),
    (re.compile(r"timed? ?out", re.I), ExitCode.TIMEOUT, "Timeout"),
    (re.compile(r"HTTP Error 5\d\d|HTTP Error 429|connection (?:reset|refused|aborted)|"
                r"temporary failure in name resolution|name or service not known|"
                r"network is unreachable|unable to download|incomplete read|"
                r"ssl|certificate|remote end closed", re.I), ExitCode.NETWORK, "NetworkError"),
]  # fmt: skip


_FRAGMENT_LOST = re.compile(r"fragment \d+ not found, unable to continue", re.I)
_HTTP_STATUS = re.compile(r"HTTP Error (\d{3})")


def check_complete(expected: float | None, actual: float | None) -> None:
    """Raise when a whole download is shorter than the site or playlist said it is.

    A source that lost its end (or fragments) must never be cut as if it were whole: clips past
    the gap would be wrong or missing without anyone noticing.
    """
    if not expected or actual is None:
        return
    tolerance = max(TRUNCATION_MIN_SECONDS, TRUNCATION_TOLERANCE * expected)
    if actual < expected - tolerance:
        raise WorkerError(
            ExitCode.NETWORK,
            "TruncatedSource",
            f"the downloaded source is {actual:.1f}s long, but the site/playlist says "
            f"{expected:.1f}s: refusing to cut a truncated source",
        )


def _clean(message: str) -> str:
    message = re.sub(r"^ERROR:\s*", "", message.strip())
    message = re.sub(r"\s*; please report this issue.*$", "", message, flags=re.S)
    return message[:500]


COOKIES_HINT = (
    "put a Netscape-format cookies file of a logged-in browser session in a Secret and set "
    'spec.source.cookiesSecretRef (docs/worker.md, "YouTube and Vimeo")'
)
REFERER_HINT = (
    "the video plays only embedded: set spec.source.httpHeaders.Referer to the URL of the page "
    "that embeds it"
)
_HINTS = {
    ExitCode.LOGIN_REQUIRED: COOKIES_HINT,
    ExitCode.PRIVATE: COOKIES_HINT + " (of an account that was granted access)",
    ExitCode.AGE_RESTRICTED: COOKIES_HINT + " (of an account that may watch it)",
}
# yt-dlp's own advice names its command-line flags, which mean nothing in a resource
_YTDLP_ADVICE = re.compile(
    r"[.\s]*(?:Use --(?:cookies|username|video-password)|Also see\s|See\s+https://github\.com/"
    r"yt-dlp|This helps protect our community).*$",
    re.S,
)


def with_hint(message: str, code: ExitCode, reason: str) -> str:
    """``message`` without yt-dlp's command-line advice, plus what to do in a resource."""
    hint = REFERER_HINT if reason == "EmbedOnly" else _HINTS.get(code)
    if hint is None:
        return message
    return f"{_YTDLP_ADVICE.sub('', message).rstrip('. ')}. Fix: {hint}"


def classify_download_error(exc: BaseException) -> WorkerError:
    """Map a yt-dlp failure (usually a ``DownloadError``) to a classified :class:`WorkerError`."""
    from yt_dlp.networking.exceptions import HTTPError, TransportError
    from yt_dlp.utils import GeoRestrictedError, UnsupportedError

    if isinstance(exc, WorkerError):
        return exc
    blocked = find_blocked(exc)
    if blocked is not None:
        return blocked
    message = _clean(str(exc))
    causes = exception_chain(exc)
    for cause in causes:
        if isinstance(cause, WorkerError):
            return cause
        if isinstance(cause, GeoRestrictedError):
            return WorkerError(ExitCode.GEO_BLOCKED, "GeoBlocked", message)
        if isinstance(cause, UnsupportedError):
            return WorkerError(
                ExitCode.UNSUPPORTED_URL,
                "UnsupportedUrl",
                f"{message}: no extractor for this URL and no media found at it",
            )
        if isinstance(cause, HTTPError):
            status = cause.status
            if status in (404, 410):
                return WorkerError(ExitCode.UNAVAILABLE, f"Http{status}", message)
            if status in (401, 403):
                # 403 is also what CDNs answer for geo or signed-URL problems; login is the
                # most common remedy and the message keeps the detail.
                code = ExitCode.LOGIN_REQUIRED
                return WorkerError(code, f"Http{status}", with_hint(message, code, ""))
            if status == 408:
                return WorkerError(ExitCode.TIMEOUT, "Http408", message)
            if status == 429 or status >= 500:
                return WorkerError(ExitCode.NETWORK, f"Http{status}", message)
            return WorkerError(ExitCode.UNAVAILABLE, f"Http{status}", message)
        if isinstance(cause, TimeoutError):
            return WorkerError(ExitCode.TIMEOUT, "Timeout", message)
        if isinstance(cause, OSError) and cause.errno == 28:  # ENOSPC
            return WorkerError(ExitCode.NO_SPACE, "NoSpace", message)
    fragment = _FRAGMENT_LOST.search(message)
    if fragment is not None:
        status = _HTTP_STATUS.search(message)
        code_ = int(status.group(1)) if status else 0
        if code_ in (404, 410):
            return WorkerError(ExitCode.UNAVAILABLE, "FragmentUnavailable", message)
        if code_ in (401, 403):
            return WorkerError(ExitCode.LOGIN_REQUIRED, "FragmentForbidden", message)
        return WorkerError(ExitCode.NETWORK, "FragmentFailed", message)
    for pattern, code, reason in _PATTERNS:
        if pattern.search(message):
            return WorkerError(code, reason, with_hint(message, code, reason))
    if any(isinstance(c, TransportError) for c in causes):
        return WorkerError(ExitCode.NETWORK, "NetworkError", message)
    return WorkerError(ExitCode.NETWORK, "DownloadFailed", message)


# -- running yt-dlp ------------------------------------------------------------------------------


class _Logger:
    """Routes yt-dlp's messages to :mod:`logging`; keeps the last errors for classification."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.http_errors: list[str] = []

    def debug(self, msg: str) -> None:
        if msg.startswith("[debug] "):
            log.debug("yt-dlp: %s", msg)
        else:
            log.info("yt-dlp: %s", msg)

    def info(self, msg: str) -> None:
        log.info("yt-dlp: %s", msg)

    def warning(self, msg: str) -> None:
        if "HTTP Error" in msg:
            self.http_errors.append(msg)
        log.warning("yt-dlp: %s", msg)

    def error(self, msg: str) -> None:
        self.errors.append(msg)
        log.debug("yt-dlp: %s", msg)


class _Stopped(Exception):
    """Raised from a progress hook when the stop event is set."""


def _terminated() -> WorkerError:
    return WorkerError(ExitCode.TERMINATED, "Terminated", "stopped by SIGTERM during the download")


class Downloader:
    """Runs yt-dlp for one job."""

    def __init__(
        self,
        scratch: Path,
        options: DownloadOptions = DownloadOptions(),
        *,
        policy: NetworkPolicy | None,
        on_progress: Callable[[DownloadProgress], None] | None = None,
        stop: threading.Event | None = None,
        proxy: GuardProxy | None = None,
        js_runtime: JsRuntime | None | bool = True,
    ) -> None:
        """``js_runtime``: ``True`` finds one (:func:`find_js_runtime`), ``None``/``False`` none."""
        self.scratch = scratch
        self.options = options
        self.js_runtime: JsRuntime | None = None
        if js_runtime is True:
            try:
                self.js_runtime = find_js_runtime()
            except RuntimeNotFound as exc:
                log.warning("%s (YouTube may offer only a few formats)", exc)
        elif isinstance(js_runtime, JsRuntime):
            self.js_runtime = js_runtime
        if self.js_runtime is not None:
            # the runtime inherits our environment: keep Deno's cache off the read-only root
            for key, value in runtime_env(scratch).items():
                os.environ.setdefault(key, value)
        self.proxy = proxy
        self.policy = policy
        self.on_progress = on_progress
        self.stop = stop or threading.Event()

    # -- helpers ---------------------------------------------------------------------------

    def _opts(self, ranges: Sequence[tuple[float, float]] | None, logger: _Logger) -> dict:
        return build_ydl_opts(
            self.scratch,
            self.options,
            ranges=ranges,
            progress_hooks=[self._hook],
            logger=logger,
            allow_files=self.policy is None or self.policy.allow_files,
            ffmpeg_proxy=self.proxy.url if self.proxy is not None else None,
            js_runtime=self.js_runtime,
        )

    def _hook(self, d: dict[str, Any]) -> None:
        if self.stop.is_set():
            raise _Stopped()
        if d.get("status") not in ("downloading", "finished") or self.on_progress is None:
            return
        total = d.get("total_bytes") or d.get("total_bytes_estimate")
        self.on_progress(
            DownloadProgress(
                downloaded_bytes=int(d.get("downloaded_bytes") or 0),
                total_bytes=int(total) if total else None,
                eta_seconds=d.get("eta"),
                speed=d.get("speed"),
            )
        )

    def _classify(self, exc: BaseException, logger: _Logger) -> WorkerError:
        if any(isinstance(c, _Stopped) for c in exception_chain(exc)) or self.stop.is_set():
            return _terminated()
        blocked = find_blocked(exc) or (last_blocked() if self.policy is not None else None)
        if blocked is None and self.proxy is not None and self.proxy.refusals:
            blocked = self.proxy.refusals[0]
        if blocked is not None:
            return blocked
        err = classify_download_error(exc)
        if err.reason == "DownloadFailed" and logger.errors:
            err = classify_download_error(Exception(logger.errors[-1]))
        if err.reason == "FragmentFailed" and logger.http_errors:
            # yt-dlp's final message names the fragment, its retry warnings the HTTP status
            err = classify_download_error(Exception(f"{err.message} ({logger.http_errors[-1]})"))
        if err.reason == "FormatNotAvailable" and self.js_runtime is None:
            err = WorkerError(
                err.exit_code,
                err.reason,
                f"{err.message} (no JavaScript runtime: YouTube hides most formats without one; "
                f"{FIX_HINT})",
            )
        return err

    def _with_retries(self, what: str, fn: Callable[[_Logger], Any]) -> Any:
        delays = backoff_delays(self.options.retries, self.options.backoff)
        attempt = 0
        while True:
            logger = _Logger()
            try:
                with guarded(self.policy):
                    return fn(logger)
            except _Stopped:
                raise _terminated() from None
            except Exception as exc:  # yt-dlp raises many types; classify them all
                err = self._classify(exc, logger)
            if err.permanent or err.exit_code == ExitCode.TERMINATED or attempt >= len(delays):
                raise err
            delay = delays[attempt] * random.uniform(0.8, 1.2)
            log.warning("%s failed (%s), retry %d in %.1fs", what, err, attempt + 1, delay)
            attempt += 1
            if self.stop.wait(delay):
                raise _terminated()

    # -- public ----------------------------------------------------------------------------

    def extract(self, url: str) -> dict[str, Any]:
        """yt-dlp's info dict for ``url`` (no media downloaded); checks every media URL."""
        if self.policy is not None:
            self.policy.check_url(url)

        def run(logger: _Logger) -> dict[str, Any]:
            import yt_dlp

            with yt_dlp.YoutubeDL(self._opts(None, logger)) as ydl:
                info = ydl.extract_info(url, download=False)
                if info is None:
                    raise WorkerError(ExitCode.UNSUPPORTED_URL, "NoMedia", f"no media at {url}")
                if info.get("_type") == "playlist":
                    entries = [e for e in info.get("entries") or [] if e]
                    if not entries:
                        raise WorkerError(ExitCode.UNSUPPORTED_URL, "NoMedia", "empty playlist")
                    info = entries[0]
                return ydl.sanitize_info(info)

        info = self._with_retries("extracting", run)
        self._check_media_urls(info)
        return info

    def _check_media_urls(self, info: dict[str, Any]) -> None:
        if self.policy is None:
            return
        urls = {info.get("url"), *(f.get("url") for f in info.get("formats") or [])}
        hosts_checked: set[str] = set()
        for url in filter(None, urls):
            host = urlsplit(url).hostname or ""
            if host not in hosts_checked:
                hosts_checked.add(host)
                self.policy.check_url(url)

    def check_playlist_hosts(self, playlist_url: str) -> None:
        """Check the hosts of every URL in an HLS playlist (and its variants) for ffmpeg.

        ffmpeg (used for ranged downloads) fetches segments itself, outside the resolver hook.
        """
        if self.policy is None:
            return
        import yt_dlp

        seen: set[str] = set()
        todo = [playlist_url]
        with yt_dlp.YoutubeDL(self._opts(None, _Logger())) as ydl, guarded(self.policy):
            while todo and len(seen) < 20:
                url = todo.pop()
                if url in seen:
                    continue
                seen.add(url)
                self.policy.check_url(url)
                with ydl.urlopen(url) as resp:
                    text = resp.read(4 * 1024 * 1024).decode("utf-8", "replace")
                hosts: set[str] = set()
                for line in text.splitlines():
                    line = line.strip()
                    refs = re.findall(r'URI="([^"]+)"', line) if line.startswith("#") else [line]
                    for ref in filter(None, refs):
                        absolute = urljoin(url, ref)
                        if ref.split("?")[0].endswith(".m3u8"):
                            todo.append(absolute)
                        elif (urlsplit(absolute).hostname or "") not in hosts:
                            hosts.add(urlsplit(absolute).hostname or "")
                            self.policy.check_url(absolute)

    def fetch_captions(self, info: dict[str, Any], language: str, automatic: bool, ext: str) -> str:
        """The text of one caption track of ``info``, downloaded by yt-dlp (under the guard).

        yt-dlp knows how each site serves captions (a plain file, an HLS subtitle rendition of
        WebVTT segments, YouTube's formats), so it fetches exactly the chosen track: language,
        uploaded or automatic, format. At most :data:`TRANSCRIPT_MAX_BYTES`.
        """
        folder = self.scratch / "captions"

        def run(logger: _Logger) -> bytes:
            import yt_dlp

            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            opts = self._opts(None, logger)
            opts.update(
                {
                    "skip_download": True,
                    "writesubtitles": not automatic,
                    "writeautomaticsub": automatic,
                    "subtitleslangs": [re.escape(language)],
                    "subtitlesformat": f"{ext}/best",
                    "outtmpl": {"default": "captions.%(ext)s", "subtitle": "captions.%(ext)s"},
                    "paths": {"home": str(folder), "temp": str(folder)},
                }
            )
            with yt_dlp.YoutubeDL(opts) as ydl:
                result = ydl.process_ie_result(dict(info), download=True)
            track = (result.get("requested_subtitles") or {}).get(language) or {}
            path = Path(track.get("filepath") or "")
            if not path.is_file():
                found = sorted(folder.glob("captions.*"))
                if not found:
                    raise WorkerError(
                        ExitCode.UNAVAILABLE,
                        "CaptionsUnavailable",
                        f"yt-dlp wrote no {language} captions for {info.get('webpage_url')}",
                    )
                path = found[0]
            if path.stat().st_size > TRANSCRIPT_MAX_BYTES:
                raise WorkerError(
                    ExitCode.INVALID_SPEC,
                    "TranscriptTooLarge",
                    f"the {language} captions exceed {TRANSCRIPT_MAX_BYTES} bytes",
                )
            return path.read_bytes()

        data = self._with_retries("fetching captions", run)
        # decoded as every transcript is (BOM, UTF-8, detected), never with replacement
        from videojobs.transcripts import decode_transcript

        try:
            return decode_transcript(data, source=f"the {language} captions")
        except InvalidSpec as exc:
            raise WorkerError(ExitCode.INVALID_SPEC, "InvalidTranscript", str(exc)) from None

    def download(
        self,
        url: str,
        info: dict[str, Any] | None = None,
        ranges: Sequence[tuple[float, float]] | None = None,
    ) -> Downloaded:
        """Download ``url`` (whole, or only ``ranges``) into the scratch directory."""
        if info is None:
            info = self.extract(url)
        if ranges and audio_only(info):
            # Range files are cut and re-timed by their video; an audio-only source (a podcast)
            # is small next to a video one: fetched whole.
            ranges = None
        if ranges:
            for fmt in info.get("formats") or [info]:
                if "m3u8" in str(fmt.get("protocol", "")) and fmt.get("url"):
                    self.check_playlist_hosts(fmt["url"])

        def run(logger: _Logger) -> dict[str, Any]:
            import yt_dlp

            for leftover in self.scratch.glob("source*"):
                leftover.unlink()
            with yt_dlp.YoutubeDL(self._opts(ranges, logger)) as ydl:
                return ydl.process_ie_result(
                    with_range_args(info) if ranges else dict(info), download=True
                )

        result = self._with_retries("downloading", run)
        parts = self._parts(result, ranges)
        if ranges:
            media_url, headers = _video_url(result, url)
            proxy_url = self.proxy.url if self.proxy is not None else None
            sei = x264_sei_filter(media_url, headers=headers, proxy_url=proxy_url)
            parts = [normalise_range(part, sei) for part in parts]
        if self.proxy is not None and self.proxy.refusals:
            raise self.proxy.refusals[0]
        size = sum(p.path.stat().st_size for p in parts)
        return Downloaded(
            parts=parts,
            title=info.get("title"),
            duration=info.get("duration"),
            partial=bool(ranges),
            bytes=size,
            full_size=info.get("filesize") or info.get("filesize_approx"),
            info={k: info.get(k) for k in ("id", "title", "extractor", "webpage_url", "duration")},
        )

    def _parts(
        self, result: dict[str, Any], ranges: Sequence[tuple[float, float]] | None
    ) -> list[DownloadedPart]:
        parts: list[DownloadedPart] = []
        for req in result.get("requested_downloads") or []:
            path = Path(req.get("filepath") or req.get("_filename") or "")
            if not path.is_file():
                continue
            start = req.get("section_start")
            end = req.get("section_end")
            if ranges and start is None:
                start, end = ranges[len(parts)] if len(parts) < len(ranges) else (0.0, None)
            parts.append(DownloadedPart(path, float(start or 0.0), end))
        if not parts:
            found = sorted(p for p in self.scratch.glob("source*") if not p.name.endswith(".part"))
            if not ranges and len(found) == 1:
                parts = [DownloadedPart(found[0])]
        if not parts:
            raise WorkerError(ExitCode.NOT_A_VIDEO, "NothingDownloaded", "yt-dlp wrote no file")
        if ranges and len(parts) != len(ranges):
            raise WorkerError(
                ExitCode.INTERNAL,
                "RangeCountMismatch",
                f"asked for {len(ranges)} ranges, got {len(parts)} files",
            )
        return sorted(parts, key=lambda p: p.start)


X264_SEI_UUID = "dc45e9bd-e6d9-48b7-962c-d820d923eeef"
"""The UUID of x264's "user data unregistered" SEI, which carries its encoder settings."""
_X264_INFO = re.compile(rb"x264 - core \d+[ -~]*")


AUDIO_EXTENSIONS = frozenset({"m4a", "mp3", "opus", "ogg", "oga", "flac", "wav", "aac"})


def audio_only(info: dict[str, Any]) -> bool:
    """Whether yt-dlp's answer describes a source without video (pure): every format says
    ``vcodec: none``, or says nothing of codecs and has an audio file extension."""
    formats = info.get("formats") or [info]

    def no_video(fmt: dict[str, Any]) -> bool:
        vcodec = fmt.get("vcodec")
        if vcodec is not None:
            return str(vcodec) == "none"
        return str(fmt.get("ext")) in AUDIO_EXTENSIONS

    return bool(formats) and all(no_video(f) for f in formats)


def _video_url(result: dict[str, Any], fallback: str) -> tuple[str, dict[str, str]]:
    """The URL (and HTTP headers) ffmpeg read the video from, per yt-dlp's answer."""
    for req in result.get("requested_downloads") or []:
        for fmt in req.get("requested_formats") or [req]:
            if fmt.get("url") and fmt.get("vcodec") != "none":
                return str(fmt["url"]), dict(fmt.get("http_headers") or {})
    return fallback, {}


def ffmpeg_headers(headers: Mapping[str, str]) -> list[str]:
    """ffmpeg's ``-headers`` option for HTTP inputs (one ``Name: value`` CRLF line each)."""
    return ["-headers", "".join(f"{k}: {v}\r\n" for k, v in headers.items())]


def _first_video_packet(
    source: str, headers: dict[str, str], timeout: float, proxy_url: str | None = None
) -> bytes:
    argv = ["ffmpeg", "-nostdin", "-loglevel", "error"]
    if source.startswith(("http://", "https://")):
        if headers:
            argv += ffmpeg_headers(headers)
        if proxy_url:
            argv += ["-http_proxy", proxy_url]
    argv += ["-i", source, "-map", "0:v:0", "-c", "copy", "-bsf:v", "h264_mp4toannexb"]
    argv += ["-frames:v", "1", "-f", "h264", "pipe:1"]
    proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    return proc.stdout if proc.returncode == 0 else b""


def _escape_option(text: str) -> str:
    return re.sub(r"([\\:,='\[\];])", r"\\\1", text)


def x264_sei_filter(
    source: str,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
    proxy_url: str | None = None,
) -> str | None:
    """The ``-bsf:v`` argument that gives a range of an x264 stream the source's settings SEI
    (see :func:`restore_x264_sei`), or ``None`` (not x264, or it could not be read)."""
    try:
        match = _X264_INFO.search(_first_video_packet(source, headers or {}, timeout, proxy_url))
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.info("could not read the source's x264 settings: %s", exc)
        return None
    if match is None:
        return None
    info = match.group(0).decode("ascii", errors="replace")
    # -bsf:v parses twice (the filter list, then the filter's options): escape twice.
    return f"h264_metadata=sei_user_data={X264_SEI_UUID}+{_escape_option(_escape_option(info))}"


def range_origin(path: Path, align: float = 0.0) -> float:
    """The millisecond at or before the earliest timestamp (decode or presentation, any stream)
    of a range file written with :func:`range_ffmpeg_args`: the source time it will start at.
    Whole milliseconds after ``align`` (a source whose time zero is not a whole millisecond)."""
    rows = _ffprobe_csv_rows(
        ["-read_intervals", "%+#64", "-show_entries", "packet=pts_time,dts_time", str(path)]
    )
    times = [float(v) for row in rows for v in row if v not in ("", "N/A")]
    if not times:
        raise WorkerError(
            ExitCode.NOT_A_VIDEO, "EmptyRange", f"the downloaded range {path.name} has no packets"
        )
    return align + math.floor(round((min(times) - align) * 1000, 6)) / 1000


def normalise_range(
    part: DownloadedPart, sei_filter: str | None = None, *, align: float = 0.0
) -> DownloadedPart:
    """Rewrite a range file (stream copy) so that it starts at its first packet, with source
    time ``origin`` (see :func:`range_origin`) as its time zero, and nothing hidden.

    The result is a plain file like a whole download: the cutter reads it as it reads any
    source, and the runner maps plan times by ``start``. ``sei_filter`` (from
    :func:`x264_sei_filter`) is applied in the same pass when the range lacks x264's SEI.
    ``align``: see :func:`range_origin`.
    """
    origin = range_origin(part.path, align)
    before = _first_video_pts(part.path)
    tmp = part.path.with_name(f".norm-{part.path.name}")
    argv = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-copyts", "-i", str(part.path)]
    argv += ["-map", "0", "-c", "copy", "-output_ts_offset", f"{-origin:.6f}"]
    if sei_filter and not _X264_INFO.search(_first_video_packet(str(part.path), {}, 60.0)):
        argv += ["-bsf:v", sei_filter]
    if part.path.suffix.lower() in (".mp4", ".m4v", ".mov"):
        # The start offset (an empty edit) in the video's own ticks: any rounding there makes
        # ffmpeg's seeks and the cutter's sample table disagree by a tick, and a frame is lost.
        argv += ["-movflags", "+faststart", "-movie_timescale", str(_video_timescale(part.path))]
    proc = subprocess.run([*argv, str(tmp)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise WorkerError(
            ExitCode.MEDIA_TOOL,
            "RangeRewriteFailed",
            f"could not rewrite the downloaded range {part.path.name}: "
            + " | ".join(proc.stderr.strip().splitlines()[-3:]),
        )
    # A muxer may shift every stream again (Matroska by Opus' pre-skip, so that no timestamp
    # is negative): time zero is where the first frame now says it is.
    after = _first_video_pts(tmp)
    shift = round(after - (before - origin), 3) if after is not None and before is not None else 0
    tmp.replace(part.path)
    return DownloadedPart(part.path, round(origin - shift, 6), part.end)


def _video_timescale(path: Path) -> int:
    rows = _ffprobe_csv_rows(
        ["-select_streams", "v:0", "-show_entries", "stream=time_base"] + [str(path)]
    )
    for row in rows:
        num, _, den = row[0].partition("/")
        if num == "1" and den.isdigit() and int(den) > 0:
            return int(den)
    return 90000


def _first_video_pts(path: Path) -> float | None:
    rows = _ffprobe_csv_rows(
        ["-select_streams", "v:0", "-read_intervals", "%+#1", "-show_entries", "packet=pts_time"]
        + [str(path)]
    )
    for row in rows:
        if row and row[0] not in ("", "N/A"):
            return float(row[0])
    return None


def _ffprobe_csv_rows(args: Sequence[str]) -> list[list[str]]:
    proc = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "csv=p=0", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise WorkerError(
            ExitCode.MEDIA_TOOL, "ProbeFailed", f"ffprobe failed on {args[-1]}: {proc.stderr}"
        )
    return [line.split(",") for line in proc.stdout.splitlines() if line.strip()]


def restore_x264_sei(
    source: str,
    parts: Sequence[DownloadedPart],
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
    proxy_url: str | None = None,
) -> int:
    """Give ranged files of an x264 stream the encoder-settings SEI of the source; returns count.

    x264 writes its settings once, into the stream's first frame. A range cut out of the middle
    lacks them, and without them the ``smart`` precision cannot encode a head that joins the
    copied rest cleanly, so it falls back to ``accurate`` (several times slower). The first
    frame of the source is read (ffmpeg reads the index and one frame), and the SEI is inserted
    into each range file's first access unit with ffmpeg's ``h264_metadata`` filter (stream copy).
    Best effort: on any problem the files stay as they are.
    """
    try:
        match = _X264_INFO.search(_first_video_packet(source, headers or {}, timeout, proxy_url))
        if match is None:
            return 0
        info = match.group(0).decode("ascii")
        # -bsf:v parses twice (the filter list, then the filter's options): escape twice.
        arg = f"h264_metadata=sei_user_data={X264_SEI_UUID}+{_escape_option(_escape_option(info))}"
        done = 0
        for part in parts:
            if _X264_INFO.search(_first_video_packet(str(part.path), {}, timeout)):
                continue
            tmp = part.path.with_name(f".sei-{part.path.name}")
            argv = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(part.path)]
            argv += ["-map", "0", "-c", "copy", "-bsf:v", arg]
            if part.path.suffix.lower() in (".mp4", ".m4v", ".mov"):
                argv += ["-movflags", "+faststart"]
            proc = subprocess.run(
                [*argv, str(tmp)], capture_output=True, timeout=timeout * 5, check=False
            )
            if proc.returncode != 0:
                tmp.unlink(missing_ok=True)
                log.info("could not restore x264 settings in %s: %s", part.path.name, proc.stderr)
                continue
            tmp.replace(part.path)
            done += 1
        return done
    except (OSError, subprocess.TimeoutExpired, UnicodeDecodeError) as exc:
        log.info("could not restore x264 settings: %s", exc)
        return 0


def _ffprobe_json(
    target: str,
    args: Sequence[str],
    *,
    timeout: float,
    proxy_url: str | None,
    headers: Mapping[str, str] | None,
) -> dict[str, Any]:
    """ffprobe's JSON for ``target`` (a URL or a local path), ``{}`` on any failure."""
    if shutil.which("ffprobe") is None:
        return {}
    remote = target.startswith(("http://", "https://"))
    cmd = [
        "ffprobe", "-v", "error", "-of", "json", *args,
        *(["-rw_timeout", str(int(timeout * 1e6))] if remote else []),
        *(["-http_proxy", proxy_url] if proxy_url and remote else []),
        *(ffmpeg_headers(headers) if headers and remote else []),
        target,
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        value = json.loads(proc.stdout or "{}")
    except (subprocess.TimeoutExpired, ValueError, OSError):
        return {}
    return value if isinstance(value, dict) else {}


def remote_duration(
    url: str,
    *,
    timeout: float = 60.0,
    proxy_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> float | None:
    """Duration of a remote media URL from ffprobe (reads the index only), or ``None``.

    Used to decide on a ranged download when the site reports no duration (direct URLs).
    The caller checks the URL with the network guard first.
    """
    probed = _ffprobe_json(
        url, ["-show_entries", "format=duration"],
        timeout=timeout, proxy_url=proxy_url, headers=headers,
    )  # fmt: skip
    value = probed.get("format", {}).get("duration")
    try:
        return float(value) if value not in (None, "N/A") else None
    except (TypeError, ValueError):
        return None


def probe_chapters(
    target: str,
    *,
    timeout: float = 60.0,
    proxy_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The container's chapters (MP4, Matroska) of a URL or local file, as ffprobe lists
    them (``start_time``, ``end_time``, ``tags.title``); ``[]`` when there are none."""
    probed = _ffprobe_json(
        target, ["-show_chapters"], timeout=timeout, proxy_url=proxy_url, headers=headers
    )
    chapters = probed.get("chapters")
    return chapters if isinstance(chapters, list) else []


def fetch_text(
    url: str,
    policy: NetworkPolicy | None,
    *,
    max_bytes: int = TRANSCRIPT_MAX_BYTES,
    encoding: str | None = None,
) -> str:
    """Download a small text document (a transcript) through the guard; decoded as every
    transcript is (``encoding``, else a BOM, UTF-8 or the encoding detected), never with
    replacement characters."""
    from videojobs.transcripts import decode_transcript

    data = fetch_bytes(url, policy, max_bytes=max_bytes)
    try:
        return decode_transcript(data, encoding, source=f"transcript {url}")
    except InvalidSpec as exc:
        raise WorkerError(ExitCode.INVALID_SPEC, "InvalidTranscript", str(exc)) from None


def fetch_bytes(
    url: str, policy: NetworkPolicy | None, *, max_bytes: int = TRANSCRIPT_MAX_BYTES
) -> bytes:
    """Download a small document (a transcript) through the guard."""
    import yt_dlp

    if policy is not None:
        policy.check_url(url)
    try:
        with yt_dlp.YoutubeDL({"quiet": True, "socket_timeout": 30}) as ydl, guarded(policy):
            with ydl.urlopen(url) as resp:
                data = resp.read(max_bytes + 1)
    except Exception as exc:
        err = classify_download_error(exc)
        raise WorkerError(err.exit_code, err.reason, f"transcript {url}: {err.message}") from None
    if len(data) > max_bytes:
        raise WorkerError(
            ExitCode.INVALID_SPEC, "TranscriptTooLarge", f"transcript {url} exceeds {max_bytes} B"
        )
    return bytes(data)
