"""Orchestration of one job: transcript → plan → download → probe → cut → publish → manifest.

The same :class:`Runner` serves the cluster (``videojobs-worker run``) and local runs
(``videojobs run``); only the reporter, the publisher and the network policy differ.

Order of work (``docs/worker.md``):

1. resolve the transcript (inline, mounted ConfigMap key, or a URL fetched through the guard);
2. plan without the source duration (errors here are ``INVALID_SPEC``);
3. extract the source with yt-dlp (guarded), learn its duration when the site or the media index
   tells it, re-plan with it (a range past the end is ``PLAN_ERROR``) and decide on a ranged
   download;
4. download (whole, or one file per range), probe, re-plan with the probed duration;
5. cut clips in parallel, bounded by the pod's CPUs; per clip: videos, thumbnail, WebVTT slice,
   sha256, atomic publish; clips already published with the same recipe are skipped (resume);
6. publish ``manifest.json`` last.

SIGTERM sets a stop event: cutters kill ffmpeg, a download in progress is interrupted, temporary
files are removed, and the process exits with 143.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote, urlsplit

from videojobs.errors import InvalidSpec, PlanError
from videojobs.models import (
    ExitCode,
    OutputFile,
    OutputKind,
    PlannedSegment,
    SegmentPlan,
    SegmentResult,
    SourceInfo,
    Transcript,
    WorkerInput,
)
from videojobs.sourceinfo import CaptionTrack, Resolved
from videojobs_worker.audio import AudioInfo, audio_source_info
from videojobs_worker.cgroup import available_cpus
from videojobs_worker.download import (
    Downloaded,
    DownloadedPart,
    Downloader,
    DownloadOptions,
    DownloadProgress,
    check_complete,
    part_for,
    plan_ranges,
    probe_chapters,
    remote_duration,
    want_partial,
)
from videojobs_worker.errors import WorkerError
from videojobs_worker.guard import GuardProxy, NetworkPolicy, redact_fetched
from videojobs_worker.jsruntime import JsRuntime, ytdlp_version
from videojobs_worker.progress import (
    EtaEstimator,
    Reporter,
    report_failure,
    write_termination_log,
)
from videojobs_worker.publish import Published, Publisher, Record, relative_uris, sha256_file
from videojobs_worker.shardparts import MANIFEST_NAME, ShardParts

if TYPE_CHECKING:
    from videojobs_worker.audio import AudioOutcome
    from videojobs_worker.cut import CutOutcome

log = logging.getLogger(__name__)

DOWNLOAD_SHARE = 40
"""The part of the progress bar (percent) a download takes; cutting takes the rest."""

RECIPE_VERSION = "1"
"""Bump when the same inputs would produce different clips (invalidates resume)."""


# -- small helpers ---------------------------------------------------------------------------------


def local_source_path(url: str, base_dir: Path | None) -> Path | None:
    """The local file a source URL names (``file://`` or a plain path), else ``None``."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme and len(parts.scheme) > 1:  # http, https, ... (a drive letter is one char)
        return None
    path = Path(url).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


def recipe_for(worker_input: WorkerInput, segment: PlannedSegment) -> str:
    """Digest of everything that determines a clip's files (for resume)."""
    spec = worker_input.spec
    src = spec.source
    data = {
        "v": RECIPE_VERSION,
        "source": [src.url, src.format, src.max_height],
        "range": [segment.start, segment.end],
        "output": [
            sorted(spec.output.formats),
            spec.output.precision,
            spec.output.quality.to_dict(),
            spec.output.thumbnails,
            spec.output.subtitles,
        ],
        "transcript": _transcript_digest(worker_input),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


def _transcript_digest(worker_input: WorkerInput) -> str | None:
    t = worker_input.spec.transcript
    if t is None:
        return None
    return hashlib.sha256((t.inline or t.url or json.dumps(t.to_dict())).encode()).hexdigest()[:16]


class _Terminated(BaseException):
    """Raised by the SIGTERM handler into the main thread while it downloads.

    A BaseException so that libraries' ``except Exception`` blocks let it through.
    """


@dataclass
class RunOptions:
    """How and where to run (not part of the spec)."""

    scratch: Path
    policy: NetworkPolicy | None
    base_dir: Path | None = None
    """Directory relative source paths and transcript files are resolved against (local)."""
    cookies_file: Path | None = None
    workers: int | None = None
    """Parallel cutters; ``None``: the pod's CPUs."""
    retries: int = 4
    backoff: float = 2.0
    shard_index: int = 0
    """This pod's shard (``JOB_COMPLETION_INDEX``) when ``WorkerInput.shards`` > 1."""
    run_key: str | None = None
    """Names this run's shard parts; default ``resource.jobName`` (one per run)."""


@dataclass
class RunResult:
    """A finished job."""

    plan: SegmentPlan
    source: SourceInfo
    segments: list[SegmentResult]
    manifest_uri: str | None
    """``None`` for a shard whose part was published while other shards are not done yet."""
    skipped: list[int] = field(default_factory=list)
    """Indices of clips found already published (resume)."""
    cut: list[int] = field(default_factory=list)
    downloaded: Downloaded | None = None
    shard: int | None = None
    """The shard this result is of (sharded runs)."""


@dataclass
class _Acquired:
    """The source's files as the run got them: a local file, or a download."""

    parts: list[DownloadedPart]
    partial: bool
    plan: SegmentPlan | None
    """The plan as it stands after the download (``None``: not planned yet)."""
    local: Path | None = None
    """The local file when the source is one (nothing downloaded)."""
    downloaded: Downloaded | None = None
    title: str | None = None
    known_duration: float | None = None
    """The duration the site or the media index told before probing."""


@dataclass
class _Clip:
    """One clip being cut: its plan, its range in the part that holds it, its scratch folder."""

    seg: PlannedSegment
    rebased: PlannedSegment
    """The clip's range in ``part`` (a ranged download's file starts at ``part.start``)."""
    part: DownloadedPart
    info: Any
    """The part's probed MediaInfo, or AudioInfo for an audio-only source."""
    recipe: str
    tmp: Path


class Runner:
    """Runs one :class:`WorkerInput` to completion (or a classified :class:`WorkerError`)."""

    def __init__(
        self,
        worker_input: WorkerInput,
        *,
        reporter: Reporter,
        publisher: Publisher,
        options: RunOptions,
        transcript: Transcript | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.input = worker_input
        self.spec = worker_input.spec
        self.reporter = reporter
        self.publisher = publisher
        self.options = options
        self.transcript = transcript
        self.stop = stop or threading.Event()
        self.js_runtime: JsRuntime | None = None
        self.resolved: Resolved | None = None
        self.interruptible = False
        """True while the main thread may be interrupted by the SIGTERM handler (downloads)."""
        self.work_dir: Path | None = None
        self._lookups: dict[tuple[int, str, str, tuple[str, ...]], SegmentResult | None] = {}
        self.audio_source: AudioInfo | None = None
        """The source when it holds audio only (set by probing)."""
        self.probed = False
        self.cut_from = 0
        """The percent at which cutting starts: a download's share once the source was
        downloaded, else 0 (a local file: the whole bar is the cutting's, no jump to 40 %)."""
        self.shards = worker_input.shards
        self.shard_index = options.shard_index if self.shards > 1 else 0
        if not 0 <= self.shard_index < self.shards:
            raise WorkerError(
                ExitCode.USAGE,
                "BadShardIndex",
                f"shard index {self.shard_index} is not in 0..{self.shards - 1}",
            )
        self._share: frozenset[int] | None = None
        """The clip indices this shard cuts (set once, from the first duration-aware plan)."""
        if self.sharded:
            reporter.shard = self.shard_index

    @property
    def sharded(self) -> bool:
        """True when this pod cuts one share of a sharded run."""
        return self.shards > 1

    def _mine(self, plan: SegmentPlan) -> SegmentPlan:
        """The plan restricted to this shard's clips (the whole plan when not sharded).

        The share is fixed the first time (every shard computes it from the same data at the
        same point), so a re-plan with a probed duration never moves a clip to another shard.
        """
        if not self.sharded:
            return plan
        if self._share is None:
            from videojobs.sharding import share_indices

            self._share = share_indices(plan, self.shards, self.shard_index)
            log.info(
                "shard %d of %d: %d of %d clips",
                self.shard_index,
                self.shards,
                len(self._share),
                len(plan.segments),
            )
        return plan.model_copy(
            update={"segments": [s for s in plan.segments if s.index in self._share]}
        )

    # -- transcript and plan ---------------------------------------------------------------

    def resolve_transcript(self) -> Transcript | None:
        """The transcript from the spec (inline, mounted file or URL), parsed."""
        if self.transcript is not None or self.spec.transcript is None:
            return self.transcript
        if self.spec.transcript.from_source is not None:
            return None  # the source's captions: resolved with the source (resolve_source)
        from videojobs.transcripts import decode_transcript, parse_transcript

        ts = self.spec.transcript
        data: bytes | None = None  # decoded below, as every transcript is
        if ts.inline is not None:
            text, where = ts.inline, "spec.transcript.inline"
        elif ts.url is not None:
            from videojobs_worker.download import fetch_bytes

            data, where = fetch_bytes(ts.url, self.options.policy), ts.url
        else:
            path = self.input.transcript_path
            if path is None:
                raise WorkerError(
                    ExitCode.USAGE,
                    "TranscriptNotMounted",
                    "spec.transcript.configMapKeyRef is set but no transcriptPath was given",
                )
            full = Path(path)
            if not full.is_absolute() and self.options.base_dir is not None:
                full = self.options.base_dir / full
            try:
                data, where = full.read_bytes(), str(full)
            except OSError as exc:
                raise WorkerError(
                    ExitCode.INVALID_SPEC, "TranscriptUnreadable", f"{full}: {exc.strerror}"
                ) from None
        try:
            if data is not None:
                text = decode_transcript(data, ts.encoding, source=where)
            transcript = parse_transcript(text, ts.format, source=where)
        except InvalidSpec as exc:
            message = redact_fetched(str(exc)) if ts.url is not None else str(exc)
            raise WorkerError(ExitCode.INVALID_SPEC, "InvalidTranscript", message) from None
        if ts.language and not transcript.language:
            transcript = transcript.model_copy(update={"language": ts.language})
        self.transcript = transcript
        return transcript

    def resolve_source(
        self, info: dict[str, Any], downloader: Downloader | None, duration: float | None
    ) -> Resolved:
        """Apply the source's captions and chapters to the spec (``fromSource``,
        ``fromChapters``); captions are fetched by ``downloader`` (yt-dlp, under the guard)."""
        from videojobs.sourceinfo import resolve_from_source

        if downloader is None and self.spec.transcript and self.spec.transcript.from_source:
            raise WorkerError(
                ExitCode.INVALID_SPEC,
                "NoCaptions",
                "transcript.fromSource needs a source that yt-dlp reads (a URL); a local file "
                "has no caption tracks to fetch",
            )

        def read(track: CaptionTrack) -> str:
            if track.data is not None or downloader is None:
                return track.data or ""
            return downloader.fetch_captions(info, track.language, track.automatic, track.ext)

        try:
            self.resolved = resolve_from_source(self.spec, info, self.transcript, read, duration)
        except InvalidSpec as exc:
            raise WorkerError(ExitCode.INVALID_SPEC, type(exc).__name__, str(exc)) from None
        self.transcript = self.resolved.transcript
        if self.resolved.captions is not None:
            log.info("transcript from the source's captions: %s", self.resolved.captions)
        if self.resolved.chapters is not None:
            log.info("segments from the source's %d chapters", self.resolved.chapters)
        return self.resolved

    def plan(self, duration: float | None) -> SegmentPlan:
        """Plan the clips; errors are INVALID_SPEC without a duration, PLAN_ERROR with one."""
        from videojobs.planning import plan_segments

        try:
            spec = self.resolved.spec if self.resolved is not None else self.spec
            hints = self.resolved.chapter_starts if self.resolved is not None else ()
            plan = plan_segments(spec, self.transcript, duration, hints)
        except PlanError as exc:
            code = ExitCode.PLAN_ERROR if duration is not None else ExitCode.INVALID_SPEC
            fetched = self.spec.transcript is not None and self.spec.transcript.url is not None
            message = redact_fetched(str(exc)) if fetched else str(exc)  # no fetched text shown
            raise WorkerError(code, type(exc).__name__, message) from None
        self.reporter.plan_notes(plan.notes)
        if duration is not None:
            for seg in plan.segments:
                if seg.start >= duration:
                    raise WorkerError(
                        ExitCode.PLAN_ERROR,
                        "RangePastEnd",
                        f"clip {seg.index} ({seg.title!r}) starts at {seg.start:g}s, after the "
                        f"end of the source ({duration:g}s)",
                    )
        if not plan.segments:
            raise WorkerError(ExitCode.PLAN_ERROR, "EmptyPlan", "the plan has no clips")
        return plan

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> RunResult:
        """Do the whole job; raises :class:`WorkerError`."""
        scratch = self.options.scratch
        scratch.mkdir(parents=True, exist_ok=True)
        self.work_dir = Path(tempfile.mkdtemp(prefix="job-", dir=scratch))
        try:
            return self._run()
        except _Terminated:
            raise WorkerError(ExitCode.TERMINATED, "Terminated", "stopped by SIGTERM") from None
        except OSError as exc:
            if exc.errno == 28:
                raise WorkerError(ExitCode.NO_SPACE, "ScratchFull", str(exc)) from None
            raise
        finally:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise WorkerError(ExitCode.TERMINATED, "Terminated", "stopped by SIGTERM")

    def _run(self) -> RunResult:
        """The whole job as named steps: start, acquire the source, probe, cut, publish."""
        assert self.work_dir is not None
        plan = self._start()
        self._check_stop()
        acquired = self._acquire(plan)
        if isinstance(acquired, RunResult):  # every clip (of the share) is already published
            return acquired
        self._check_stop()
        plan, source, infos = self._probe_source(acquired)
        mine = self._mine(plan)
        self.reporter.update(segments_total=len(mine.segments))
        self._check_stop()

        results, skipped, cut = self._cut_all(mine, acquired.parts, infos)
        self._check_stop()

        self.reporter.stage("Uploading", "writing the manifest")
        downloaded = acquired.downloaded
        if self.sharded:
            return self._finish_shard(plan, source, results, downloaded, skipped, cut)
        manifest_uri = self._publish_manifest(plan, source, results, downloaded)
        self.reporter.finish(manifest_uri)
        return RunResult(plan, source, results, manifest_uri, skipped, cut, downloaded)

    def _start(self) -> SegmentPlan | None:
        """Check the output is writable, read the transcript and plan without the source
        (``None`` when the plan needs the source's info: planned once it is known)."""
        self.reporter.stage("Starting", "reading the transcript")
        preflight = getattr(self.publisher, "preflight", None)
        if preflight is not None:  # the output must be writable before anything is downloaded
            preflight()
        self.resolve_transcript()
        if self.spec.needs_source_info:
            return None
        plan = self.plan(None)
        if not self.sharded:
            self.reporter.update(segments_total=len(plan.segments))
        return plan

    def _acquire(self, plan: SegmentPlan | None) -> _Acquired | RunResult:
        """The source's files: a local file as it is, else downloaded (the ranges this shard
        needs); a :class:`RunResult` when every clip was already published (resume)."""
        url = self.spec.source.url
        allow_files = self.options.policy is None or self.options.policy.allow_files
        local = local_source_path(url, self.options.base_dir) if allow_files else None
        if local is not None:
            if not local.is_file():
                raise WorkerError(ExitCode.UNAVAILABLE, "FileNotFound", f"no such file: {local}")
            if self.spec.needs_source_info:
                self.resolve_source({"chapters": probe_chapters(str(local))}, None, None)
            return _Acquired([DownloadedPart(local)], partial=False, local=local, plan=plan)
        if self.options.policy is not None:
            self.options.policy.check_url(url)
        fetched, known_duration, plan, title = self._download(url, plan)
        if fetched is None:  # every clip (of the share) is published: only the manifest left
            return self._finish_published(plan, title, known_duration)
        return _Acquired(
            fetched.parts,
            partial=fetched.partial,
            plan=plan,
            downloaded=fetched,
            title=title,
            known_duration=known_duration,
        )

    def _probe_source(self, acquired: _Acquired) -> tuple[SegmentPlan, SourceInfo, dict[Path, Any]]:
        """Probe every part, re-plan with the probed duration (a whole source) and report the
        source; returns the plan, the source and each part's probed info."""
        self.reporter.stage("Probing", "reading the source's streams")
        from videojobs_worker.probe import probe

        parts = acquired.parts
        infos = {p.path: self._probe(p.path, probe) for p in parts}
        self.probed = True
        self._formats()  # an audio-only format for a video source: refused before cutting
        first = infos[parts[0].path]
        plan = acquired.plan
        if acquired.partial:
            duration = acquired.known_duration
        else:
            duration = first.duration
            if acquired.local is None:  # never cut a download that lost its end as if whole
                check_complete(acquired.known_duration, duration)
            plan = self.plan(duration)
        assert plan is not None
        source = self._source_info(first, acquired, duration)
        self.reporter.source(source)
        return plan, source, infos

    def _source_info(self, first: Any, acquired: _Acquired, duration: float | None) -> SourceInfo:
        """The reported source: the first part's probed facts plus what the run learnt."""
        from videojobs_worker.probe import to_source_info

        title = acquired.title or self._title_from(self.spec.source.url)
        partial = acquired.partial
        if isinstance(first, AudioInfo):
            source = audio_source_info(first, title=title, partial=partial)
        else:
            source = to_source_info(first, title=title, partial=partial)
        downloaded = acquired.downloaded
        updates: dict[str, Any] = {
            "duration_seconds": round(duration, 3) if duration else None,
            "downloader": f"yt-dlp {ytdlp_version()}" if downloaded else None,
            "js_runtime": str(self.js_runtime) if self.js_runtime else None,
        }
        if self.resolved is not None:
            updates["captions"] = self.resolved.captions
            updates["chapters"] = self.resolved.chapters
        if partial:
            updates["size_bytes"] = downloaded.bytes if downloaded else first.size_bytes
        return source.model_copy(update=updates)

    def _finish_published(
        self, plan: SegmentPlan, title: str | None, duration: float | None
    ) -> RunResult:
        """Resume of a job whose clips are all published: write the manifest, download nothing.

        For a shard: its own clips are all published (or its share is empty)."""
        results = [self._published(seg) for seg in self._mine(plan).segments]
        assert all(r is not None for r in results)
        source = SourceInfo(
            title=title or self._title_from(self.spec.source.url),
            duration_seconds=round(duration, 3) if duration else None,
        )
        self.reporter.source(source)
        for result in results:
            assert result is not None
            self.reporter.segment(result, len(results))
        log.info("all %d clips are already published; writing the manifest", len(results))
        self.reporter.stage("Uploading", "writing the manifest")
        final = [r for r in results if r is not None]
        if self.sharded:
            indices = [r.index for r in final]
            return self._finish_shard(plan, source, final, None, indices, [], probed=False)
        manifest_uri = self._publish_manifest(plan, source, final, None)
        self.reporter.finish(manifest_uri)
        indices = [s.index for s in plan.segments]
        return RunResult(plan, source, final, manifest_uri, indices, [], None)

    @staticmethod
    def _title_from(url: str) -> str | None:
        name = Path(unquote(urlsplit(url).path)).stem
        return name or None

    # -- download --------------------------------------------------------------------------

    def _download(
        self, url: str, plan: SegmentPlan | None
    ) -> tuple[Downloaded | None, float | None, SegmentPlan, str | None]:
        """Look up and download the source; ``None`` instead of the download when every clip
        of the (duration-checked) plan is already published."""
        assert self.work_dir is not None
        self.reporter.stage("Downloading", "looking up the source")
        download_dir = self.work_dir / "download"
        download_dir.mkdir()
        started = time.monotonic()

        def on_progress(p: DownloadProgress) -> None:
            fraction = download_fraction(p)
            self.reporter.update(
                percent=int(DOWNLOAD_SHARE * min(1.0, fraction)),
                bytes_done=p.downloaded_bytes,
                bytes_total=p.total_bytes,
                eta_seconds=int(p.eta_seconds) if p.eta_seconds else None,
                message="downloading",
            )

        with contextlib.ExitStack() as stack:
            proxy = None
            if self.options.policy is not None:
                # ffmpeg and ffprobe fetch through a proxy that applies the policy (guard.py)
                proxy = stack.enter_context(GuardProxy(self.options.policy))
            return self._fetch(url, plan, download_dir, proxy, on_progress, started)

    def _fetch(
        self,
        url: str,
        plan: SegmentPlan | None,
        download_dir: Path,
        proxy: GuardProxy | None,
        on_progress: Callable[[DownloadProgress], None],
        started: float,
    ) -> tuple[Downloaded | None, float | None, SegmentPlan, str | None]:
        source = self.spec.source
        options = DownloadOptions(
            max_height=source.max_height,
            fmt=source.format,
            cookies_file=self.options.cookies_file,
            retries=self.options.retries,
            backoff=self.options.backoff,
            http_headers=dict(source.http_headers or {}),
            outputs=tuple(self.spec.output.formats),
        )
        downloader = Downloader(
            download_dir,
            options,
            policy=self.options.policy,
            on_progress=on_progress,
            stop=self.stop,
            proxy=proxy,
        )
        self.js_runtime = downloader.js_runtime
        self.interruptible = True
        try:
            info = downloader.extract(url)
            duration = info.get("duration")
            direct_url = info.get("url")
            if duration is None and direct_url:  # the header tells (needed for resume, ranges)
                duration = remote_duration(
                    direct_url,
                    proxy_url=proxy.url if proxy else None,
                    headers=info.get("http_headers"),
                )
            duration = float(duration) if duration else None
            if self.spec.needs_source_info:
                if self.spec.segmentation.from_chapters and not info.get("chapters") and direct_url:
                    # direct files: the container's chapters (ffprobe reads the index only)
                    chapters = probe_chapters(
                        direct_url,
                        proxy_url=proxy.url if proxy else None,
                        headers=info.get("http_headers"),
                    )
                    info = {**info, "chapters": chapters}
                self.resolve_source(info, downloader, duration)
            ranges: list[tuple[float, float]] | None = None
            if duration is not None or plan is None:
                plan = self.plan(duration)
            mine = self._mine(plan)  # a shard downloads only the ranges of its own clips
            if (duration is not None or not mine.segments) and all(
                self._published(seg) is not None for seg in mine.segments
            ):
                return None, duration, plan, info.get("title")
            candidate = plan_ranges(((s.start, s.end) for s in mine.segments), duration)
            if want_partial(source.partial_download, candidate, duration):
                ranges = candidate
                self.reporter.update(message=f"downloading {len(ranges)} range(s)")
            downloaded = downloader.download(url, info, ranges)
        finally:
            self.interruptible = False
        log.info(
            "downloaded %d file(s), %d bytes%s in %.1fs",
            len(downloaded.parts),
            downloaded.bytes,
            " (ranged)" if downloaded.partial else "",
            time.monotonic() - started,
        )
        self.cut_from = DOWNLOAD_SHARE
        self.reporter.update(percent=DOWNLOAD_SHARE, bytes_done=downloaded.bytes, eta_seconds=None)
        return downloaded, duration, plan, downloaded.title

    # -- cutting and publishing --------------------------------------------------------------

    def _probe(self, path: Path, probe: Callable[[Path], Any]) -> Any:
        """The source's MediaInfo, or its AudioInfo when it holds audio only (issue 23)."""
        from videojobs_worker.audio import probe_audio

        try:
            return probe(path)
        except WorkerError as exc:
            if exc.reason != "NotAVideo" or "no video stream" not in exc.message:
                raise
            audio = probe_audio(path)
            if audio is None:
                raise
        self.audio_source = audio
        return audio

    def _formats(self) -> list[str]:
        """The output formats, ``auto`` resolved: like an audio-only source, mp4 for a video."""
        from videojobs_worker.audio import AUDIO_FORMATS, output_format

        formats: list[str] = list(self.spec.output.formats)
        if not self.probed:  # looking up published clips before the download: names as asked
            return formats
        if self.audio_source is not None:
            resolved = [output_format(f, self.audio_source) for f in formats]
        else:
            bad = [f for f in formats if f in AUDIO_FORMATS]
            if bad:
                raise WorkerError(
                    ExitCode.INVALID_SPEC,
                    "AudioFormatForVideo",
                    f"output.formats {bad} hold audio only; the source has video "
                    "(use mp4, webm or auto)",
                )
            resolved = ["mp4" if f == "auto" else f for f in formats]
        return list(dict.fromkeys(resolved))

    def _file_names(self, seg: PlannedSegment) -> list[tuple[OutputKind, str, str]]:
        """(kind, format, name) of every file a clip publishes, videos first."""
        out = self.spec.output
        names: list[tuple[OutputKind, str, str]] = [
            ("video", fmt, f"{seg.stem}.{fmt}") for fmt in self._formats()
        ]
        if out.thumbnails and self.audio_source is None:
            names.append(("thumbnail", "jpg", f"{seg.stem}.jpg"))
        if out.subtitles and self.transcript is not None and self.transcript.cues:
            names.append(("subtitles", "vtt", f"{seg.stem}.vtt"))
        return names

    def _published(self, seg: PlannedSegment) -> SegmentResult | None:
        """The clip's result when all its files are already published (looked up once)."""
        recipe = recipe_for(self.input, seg)
        key = (seg.index, seg.stem, recipe, tuple(self._formats()))
        if key not in self._lookups:
            self._lookups[key] = self._already_published(seg, recipe)
        return self._lookups[key]

    def _already_published(self, seg: PlannedSegment, recipe: str) -> SegmentResult | None:
        found: list[tuple[OutputKind, str, Published]] = []
        for kind, fmt, name in self._file_names(seg):
            published = self.publisher.lookup(name)
            if published is None or published.record.recipe != recipe:
                return None
            found.append((kind, fmt, published))
        return self._result(seg, found)

    def _result(
        self, seg: PlannedSegment, files: list[tuple[OutputKind, str, Published]]
    ) -> SegmentResult:
        video = next(p.record for kind, _, p in files if kind == "video")
        notes = sorted({p.record.precision or "" for kind, _, p in files if kind == "video"})
        return SegmentResult(
            index=seg.index,
            knowledge_id=seg.knowledge_id,
            title=seg.title,
            start=seg.start,
            end=seg.end,
            stem=seg.stem,
            precision=video.precision or self.spec.output.precision,
            start_offset_seconds=video.start_offset or 0.0,
            files=[
                OutputFile(
                    kind=kind,
                    format=fmt,
                    uri=p.uri,
                    bytes=p.record.bytes,
                    sha256=p.record.sha256,
                    duration_seconds=p.record.duration,
                )
                for kind, fmt, p in files
            ],
            note="; ".join(
                dict.fromkeys(
                    p.record.note for kind, _, p in files if kind == "video" and p.record.note
                )
            )
            or (None if len(notes) <= 1 else f"precisions used: {', '.join(notes)}"),
        )

    def _cut_all(
        self, plan: SegmentPlan, parts: list[DownloadedPart], infos: dict[Path, Any]
    ) -> tuple[list[SegmentResult], list[int], list[int]]:
        assert self.work_dir is not None
        self.reporter.stage("Cutting", "checking published clips")
        total = len(plan.segments)
        results: dict[int, SegmentResult] = {}
        skipped: list[int] = []
        todo: list[PlannedSegment] = []
        for seg in plan.segments:
            done = self._published(seg)
            if done is not None:
                results[seg.index] = done
                skipped.append(seg.index)
                self.reporter.segment(done, total)
            else:
                todo.append(seg)
        if skipped:
            log.info("resuming: %d of %d clips already published", len(skipped), total)

        cpus = self.options.workers or available_cpus()
        jobs = max(1, min(cpus, len(todo)))
        threads = max(1, cpus // jobs)
        fractions: dict[int, float] = {s.index: 1.0 for s in plan.segments if s.index in results}
        lock = threading.Lock()
        eta = EtaEstimator()
        base = self.cut_from

        def progress(index: int, fraction: float) -> None:
            with lock:
                fractions[index] = max(0.0, min(1.0, fraction))
                overall = sum(fractions.values()) / total
                # the ETA from this run's cutting only (clips published before were free)
                fresh = sum(fractions.get(s.index, 0.0) for s in todo) / max(1, len(todo))
            self.reporter.update(
                percent=base + int((100 - base) * overall), eta_seconds=eta.estimate(fresh)
            )

        if todo:
            # Clips are about to be (re)written: an older manifest may list files of the same
            # names with other contents. Remove it first, so no manifest ever points at replaced
            # clips; the new one is published once every clip is in place.
            self.publisher.discard(MANIFEST_NAME)
        self.reporter.update(message=f"cutting {len(todo)} clip(s) with {jobs} worker(s)")
        clips_dir = self.work_dir / "clips"
        clips_dir.mkdir()
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="cut") as pool:
            futures: dict[Future[SegmentResult], PlannedSegment] = {
                pool.submit(self._cut_one, seg, parts, infos, clips_dir, threads, progress): seg
                for seg in todo
            }
            # each clip is reported as soon as it is published: the status (and the REST
            # results) list it, and its files can be fetched, while the others are being cut
            for future in as_completed(futures):
                if future.exception() is not None:
                    self.stop.set()  # stop the other cutters promptly; nothing more is published
                    wait(futures)
                    errors = [f.exception() for f in futures if f.exception() is not None]
                    errors.sort(key=lambda e: isinstance(e, WorkerError) and e.exit_code == 143)
                    raise errors[0]  # type: ignore[misc]
                seg = futures[future]
                results[seg.index] = future.result()
                self.reporter.segment(results[seg.index], total)
        ordered = [results[s.index] for s in plan.segments]
        return ordered, skipped, [s.index for s in todo]

    def _cut_one(
        self,
        seg: PlannedSegment,
        parts: list[DownloadedPart],
        infos: dict[Path, Any],
        clips_dir: Path,
        threads: int,
        progress: Callable[[int, float], None],
    ) -> SegmentResult:
        """Cut, check and publish every file of one clip: videos, thumbnail, subtitles."""
        self._check_stop()
        part = part_for(parts, seg.start, seg.end)
        clip = _Clip(
            seg=seg,
            rebased=seg.model_copy(
                update={
                    "start": round(seg.start - part.start, 3),
                    "end": round(seg.end - part.start, 3),
                }
            ),
            part=part,
            info=infos[part.path],
            recipe=recipe_for(self.input, seg),
            tmp=clips_dir / f"{seg.index:04d}",
        )
        clip.tmp.mkdir()
        try:
            files = self._cut_videos(clip, threads, progress)
            files += self._cut_extras(clip)
            self._check_stop()
            published: list[tuple[OutputKind, str, Published]] = []
            for kind, fmt, path, record in files:
                self._check_stop()
                published.append((kind, fmt, self.publisher.publish(path, path.name, record)))
            progress(seg.index, 1.0)
            return self._result(seg, published)
        finally:
            shutil.rmtree(clip.tmp, ignore_errors=True)

    def _cut_videos(
        self, clip: _Clip, threads: int, progress: Callable[[int, float], None]
    ) -> list[tuple[OutputKind, str, Path, Record]]:
        """One video (or audio) file per output format, each checked against the plan."""
        formats = self._formats()
        files: list[tuple[OutputKind, str, Path, Record]] = []
        for i, fmt in enumerate(formats):

            def on_progress(fraction: float, _i: int = i) -> None:
                progress(clip.seg.index, (_i + fraction) / len(formats) * 0.95)

            outcome = self._cut_format(clip, fmt, threads, on_progress)
            path = Path(outcome.path)
            record = Record(
                sha256=sha256_file(path),
                bytes=path.stat().st_size,
                recipe=clip.recipe,
                duration=round(float(outcome.duration), 3),
                precision=outcome.precision_used,
                start_offset=round(float(outcome.start_offset), 3),
                note=outcome.note,
            )
            files.append(("video", fmt, path, record))
            self._check_stop()
        return files

    def _cut_format(
        self, clip: _Clip, fmt: str, threads: int, on_progress: Callable[[float], None]
    ) -> CutOutcome | AudioOutcome:
        """Cut the clip in one format: the audio cutter for an audio source, else the video's."""
        from videojobs_worker.audio import cut_audio_clip
        from videojobs_worker.cut import CutRequest, Format, cut_clip

        out = self.spec.output
        dest = clip.tmp / f"{clip.seg.stem}.{fmt}"
        if isinstance(clip.info, AudioInfo):
            return cut_audio_clip(
                clip.info,
                clip.rebased,
                fmt,
                out.precision,
                out.quality,
                dest,
                on_progress=on_progress,
                stop=self.stop,
            )
        return cut_clip(
            CutRequest(
                clip.part.path,
                clip.info,
                clip.rebased,
                cast(Format, fmt),  # not an audio format: _formats checked
                out.precision,
                out.quality,
                dest,
                threads=threads,
                on_progress=on_progress,
                stop=self.stop,
            )
        )

    def _cut_extras(self, clip: _Clip) -> list[tuple[OutputKind, str, Path, Record]]:
        """The clip's thumbnail (a video source) and WebVTT slice, when asked for."""
        from videojobs_worker.cut import make_thumbnail

        seg, rebased = clip.seg, clip.rebased
        files: list[tuple[OutputKind, str, Path, Record]] = []
        if self.spec.output.thumbnails and not isinstance(clip.info, AudioInfo):  # no picture
            thumb = clip.tmp / f"{seg.stem}.jpg"
            at = rebased.start + min(1.0, rebased.duration / 2)
            make_thumbnail(clip.part.path, at, thumb)
            files.append(("thumbnail", "jpg", thumb, self._plain_record(thumb, clip.recipe)))
        if any(kind == "subtitles" for kind, _, _ in self._file_names(seg)):
            from videojobs_worker.subtitles import slice_vtt

            assert self.transcript is not None
            vtt = clip.tmp / f"{seg.stem}.vtt"
            vtt.write_text(slice_vtt(self.transcript, seg.start, seg.end), encoding="utf-8")
            files.append(("subtitles", "vtt", vtt, self._plain_record(vtt, clip.recipe)))
        return files

    # -- shards: one part each, one merged manifest ----------------------------------------------

    def _run_key(self) -> str:
        ref = self.input.resource
        return self.options.run_key or (ref.job_name if ref is not None else None) or "local"

    def _finish_shard(
        self,
        plan: SegmentPlan,
        source: SourceInfo,
        results: list[SegmentResult],
        downloaded: Downloaded | None,
        skipped: list[int],
        cut: list[int],
        *,
        probed: bool = True,
    ) -> RunResult:
        """Publish this shard's part; the run's merge step publishes the manifest once every
        shard finished (:mod:`videojobs_worker.shardparts`)."""
        assert self.work_dir is not None
        parts = ShardParts(
            self.publisher, self.work_dir, self._run_key(), self.shard_index, self.shards
        )
        parts.finish(plan, source, results, downloaded, probed=probed)
        self.reporter.finish_shard()
        log.info("shard %d published its part; the merge step merges the parts", self.shard_index)
        return RunResult(
            plan, source, results, None, skipped, cut, downloaded, shard=self.shard_index
        )

    @staticmethod
    def _plain_record(path: Path, recipe: str) -> Record:
        return Record(sha256=sha256_file(path), bytes=path.stat().st_size, recipe=recipe)

    def _publish_manifest(
        self,
        plan: SegmentPlan,
        source: SourceInfo,
        results: list[SegmentResult],
        downloaded: Downloaded | None,
    ) -> str:
        assert self.work_dir is not None
        manifest: dict[str, Any] = {
            "apiVersion": "videojobs.io/v1alpha1",
            "kind": "ClipManifest",
            "resource": self.input.resource.to_dict() if self.input.resource else None,
            "sourceUrl": self.spec.source.url,
            "source": source.to_dict(),
            "plan": plan.to_dict(),
            "segments": [r.to_dict() for r in results],
        }
        if downloaded is not None:
            manifest["download"] = {
                "partial": downloaded.partial,
                "bytes": downloaded.bytes,
                "ranges": [[p.start, p.end] for p in downloaded.parts]
                if downloaded.partial
                else None,
            }
        manifest = relative_uris(manifest, self.publisher.uri(MANIFEST_NAME))
        path = self.work_dir / MANIFEST_NAME
        path.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        record = Record(sha256=sha256_file(path), bytes=path.stat().st_size)
        return self.publisher.publish(path, MANIFEST_NAME, record).uri


# -- progress (pure) -----------------------------------------------------------------------------


def download_fraction(p: DownloadProgress) -> float:
    """How much of a download is done (0..1): from its total size, or, when the site does not
    tell it (HLS, ranged downloads), from its speed and ETA; 0 when neither is known."""
    total = p.total_bytes
    if not total and p.speed and p.eta_seconds is not None:
        total = int(p.downloaded_bytes + p.speed * p.eta_seconds)
    return min(1.0, p.downloaded_bytes / total) if total else 0.0


# -- running with signals and exit codes -------------------------------------------------


@contextlib.contextmanager
def sigterm_handler(runner: Runner) -> Iterator[None]:
    """Turn SIGTERM (and SIGINT) into the runner's stop event (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: Any) -> None:
        log.warning("received signal %d: stopping", signum)
        runner.stop.set()
        if runner.interruptible:
            raise _Terminated()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_job(runner: Runner) -> tuple[int, RunResult | None]:
    """Run with signal handling; report failures; return the exit code and the result."""
    try:
        with sigterm_handler(runner):
            result = runner.run()
    except WorkerError as err:
        report_failure(runner.reporter, err)
        return int(err.exit_code), None
    except _Terminated:
        stopped = WorkerError(ExitCode.TERMINATED, "Terminated", "stopped by SIGTERM")
        report_failure(runner.reporter, stopped)
        return int(stopped.exit_code), None
    except Exception as exc:  # a bug: report it as INTERNAL (retried) with its message
        log.exception("unexpected error")
        bug = WorkerError(ExitCode.INTERNAL, type(exc).__name__, str(exc) or repr(exc))
        report_failure(runner.reporter, bug)
        return int(bug.exit_code), None
    if result.manifest_uri is None:
        summary = f"shard {result.shard}: {len(result.segments)} clips published, part written"
    else:
        summary = f"{len(result.segments)} clips published: {result.manifest_uri}"
    write_termination_log(0, "Ok", summary)
    return 0, result
