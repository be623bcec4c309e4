"""Local runs: ``videojobs run job.yaml`` and ``videojobs demo``.

The same :class:`~videojobs_worker.runner.Runner` as in the cluster, with a terminal progress bar,
a directory publisher (``--out``; the spec's PVC storage is replaced by it, an S3 storage is used
as it is when no ``--out`` is given) and a network policy that allows local files and loopback.
"""

from __future__ import annotations

import dataclasses
import functools
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import yaml

from videojobs.budget import budget_message, memory_budget
from videojobs.errors import InvalidSpec
from videojobs.models import ErrorInfo, ExitCode, SegmentResult, Transcript, WorkerInput
from videojobs.times import format_timestamp
from videojobs_worker.errors import WorkerError
from videojobs_worker.guard import NetworkPolicy
from videojobs_worker.mergestep import MergeOptions, run_merge
from videojobs_worker.progress import NullReporter, Reporter, TerminalReporter
from videojobs_worker.publish import DirectoryPublisher, Publisher, publisher_for
from videojobs_worker.runner import Runner, RunOptions, RunResult, run_job


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


NOTE_MIN_WIDTH = 8
"""The note column is never narrower than this (the other columns are never cut)."""


def _bounded(note: str, width: int) -> str:
    """``note`` in at most ``width`` characters (cut with an ellipsis)."""
    return note if len(note) <= width else note[: max(1, width - 1)] + "…"


def print_results(
    result: RunResult, stream: TextIO | None = None, *, columns: int | None = None
) -> None:
    """The result table of a local run, as wide as the terminal (``columns``, default: its
    width): a long note is cut short in the table and given in full below it (and in
    ``manifest.json``), and so are the planner's notes."""
    out = stream or sys.stdout
    columns = columns or shutil.get_terminal_size((100, 24)).columns
    rows: list[tuple[str, ...]] = [("#", "clip", "start", "end", "precision", "files", "note")]
    notes: list[tuple[int, str]] = []
    for seg in result.segments:
        files = ", ".join(f"{f.format} {_human(f.bytes)}" for f in seg.files)
        note = _note(seg, result)
        start, end = format_timestamp(seg.start), format_timestamp(seg.end)
        rows.append((str(seg.index), seg.stem, start, end, seg.precision, files, note))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    room = max(NOTE_MIN_WIDTH, columns - 1 - sum(w + 2 for w in widths[:-1]))
    widths[-1] = min(widths[-1], room)
    for n, row in enumerate(rows):
        note = _bounded(row[-1], widths[-1])
        if note != row[-1]:
            notes.append((int(row[0]), row[-1]))
        cells: tuple[str, ...] = (*row[:-1], note)
        out.write("  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip())
        out.write("\n")
        if n == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")
    wrap = functools.partial(textwrap.fill, width=max(40, columns - 1), subsequent_indent="  ")
    for index, note in notes:
        out.write(wrap(f"clip {index}: {note}") + "\n")
    for note in result.plan.notes:  # what the planner snapped, merged, trimmed or dropped
        out.write(wrap(f"plan: {note}") + "\n")
    src = result.source
    summary = f"{len(result.segments)} clips"
    if result.skipped:
        summary += f" ({len(result.skipped)} already published, not cut again)"
    if src.partial and result.downloaded is not None:
        summary += f"; downloaded only the needed ranges ({_human(result.downloaded.bytes)})"
    out.write(f"\n{summary}\nmanifest: {_shown(result.manifest_uri)}\n")


def _shown(uri: str | None) -> str:
    """A manifest's URI as a person reads it: a local file as its path."""
    if uri and uri.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        return unquote(urlsplit(uri).path)
    return str(uri)


def _note(seg: SegmentResult, result: RunResult) -> str:
    parts = []
    if seg.index in result.skipped:
        parts.append("resumed")
    if seg.start_offset_seconds:
        parts.append(f"start snapped {seg.start_offset_seconds:+.3f}s")
    if seg.note:
        parts.append(seg.note)
    return "; ".join(parts)


def _load(manifest: Path) -> tuple[WorkerInput, Transcript | None, str, str]:
    """WorkerInput, transcript, resource name and namespace from a manifest file; raises
    InvalidSpec."""
    from videojobs.validation import load_job

    try:
        job, transcript, _plan = load_job(manifest)
    except InvalidSpec as exc:
        from videojobs.planning import NeedsTranscript

        if not isinstance(exc, NeedsTranscript):
            raise
        # A transcript given by URL: the runner fetches it and plans then.
        from videojobs.validation import load_manifests

        jobs = load_manifests(manifest)
        job, transcript = jobs[0], None
    name = job.metadata.name or manifest.stem
    namespace = job.metadata.namespace or "default"
    return WorkerInput(spec=job.spec, allow_private_networks=True), transcript, name, namespace


@dataclass(frozen=True)
class ShardOutcome:
    """What one shard process of a local run did."""

    index: int
    code: int
    result: RunResult | None
    error: ErrorInfo | None
    peak_rss_kib: int
    """Peak RSS of the shard process since it started (its ffmpeg children not included)."""
    children_peak_rss_kib: int
    """The largest of its ffmpeg children (Linux counts a child's pre-``exec`` memory, forked
    from the shard, in it too: an upper bound)."""


def _run_shard(
    worker_input: WorkerInput,
    transcript: Transcript | None,
    publisher: Publisher,
    options: RunOptions,
) -> ShardOutcome:
    """One shard of a local run, in its own process (``run_local`` with a parallelism)."""
    try:  # a forked process starts with its parent's peak RSS: count this shard's own
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    reporter = NullReporter()
    runner = Runner(
        worker_input, reporter=reporter, publisher=publisher, options=options, transcript=transcript
    )
    code, result = run_job(runner)
    return ShardOutcome(
        options.shard_index,
        code,
        result,
        reporter.error,
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )


def run_shards(
    worker_input: WorkerInput,
    transcript: Transcript | None,
    publisher: Publisher,
    options: RunOptions,
    shards: int,
) -> tuple[str, list[ShardOutcome]]:
    """Run the ``shards`` shares of a job as parallel processes, as the pods of an Indexed Job
    would: each cuts its share and publishes its part (the merge step, :func:`_shards_result`,
    then publishes the manifest). The run key is new each time, so parts of an earlier run are
    never merged; it is returned with the outcomes."""
    sharded = worker_input.model_copy(update={"shards": shards})
    run_key = f"local-{uuid.uuid4().hex[:12]}"
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with ProcessPoolExecutor(max_workers=shards, mp_context=context) as pool:
        futures = []
        for index in range(shards):
            scratch = options.scratch / f"shard-{index}"
            shard_options = RunOptions(
                **{
                    **options.__dict__,
                    "scratch": scratch,
                    "shard_index": index,
                    "run_key": run_key,
                }
            )
            futures.append(pool.submit(_run_shard, sharded, transcript, publisher, shard_options))
        return run_key, [f.result() for f in futures]


def _transcript_within_budget(
    worker_input: WorkerInput,
    publisher: Publisher,
    options: RunOptions,
    transcript: Transcript | None,
) -> Transcript | None:
    """The job's transcript, parsed within :data:`~videojobs.budget.PARSE_MEMORY`.

    ``_load`` parses inline and file transcripts within the budget; one given by URL is fetched
    here, before any shard starts, and parsed under the same budget, as ``serve``'s worker does
    (a hostile server's transcript must not grow a workstation's process to gigabytes)."""
    if transcript is not None:
        return transcript
    runner = Runner(worker_input, reporter=NullReporter(), publisher=publisher, options=options)
    try:
        with memory_budget():
            return runner.resolve_transcript()
    except MemoryError:
        raise WorkerError(ExitCode.INVALID_SPEC, "TranscriptTooLarge", budget_message()) from None


def finish_shards(
    worker_input: WorkerInput,
    publisher: Publisher,
    options: RunOptions,
    run: tuple[str, list[ShardOutcome]],
    reporter: Reporter,
) -> tuple[int, RunResult | None]:
    """A sharded run's exit code and result: the first failed shard's, else the merge step's
    (every part merged into the manifest) with what every shard skipped and cut."""
    run_key, outcomes = run
    failed = [o for o in outcomes if o.code != 0]
    if failed:
        reporter.error = failed[0].error
        return failed[0].code, None
    merge_options = MergeOptions(
        work_dir=options.scratch / "merge", wait_seconds=LOCAL_MERGE_WAIT, run_key=run_key
    )
    sharded = worker_input.model_copy(update={"shards": len(outcomes)})
    code, merged = run_merge(sharded, publisher, reporter, merge_options)
    first = next((o.result for o in outcomes if o.result is not None), None)
    if merged is None or first is None:
        return code or int(ExitCode.INTERNAL), None
    downloads = [o.result.downloaded for o in outcomes if o.result and o.result.downloaded]
    result = dataclasses.replace(
        first,
        source=merged.source,
        segments=merged.segments,
        manifest_uri=merged.uri,
        skipped=sorted(i for o in outcomes if o.result for i in o.result.skipped),
        cut=sorted(i for o in outcomes if o.result for i in o.result.cut),
        downloaded=downloads[0] if downloads else None,
        shard=None,
    )
    return 0, result


LOCAL_MERGE_WAIT = 10.0
"""A local run's parts are on this machine's disk: visible at once, the wait is a formality."""


def run_local(
    manifest: Path,
    out_dir: Path | None = None,
    *,
    progress: bool = True,
    allow_private_networks: bool = True,
    parallelism: int | None = None,
) -> int:
    """Run the job in ``manifest`` on this machine; print the result table; return the exit code.

    Clips go to ``out_dir`` (default ``./videojobs-output/<name>`` for PVC storage; an S3
    storage is used as configured when ``out_dir`` is not given). Relative source paths and
    transcript files are resolved against the manifest's directory. A cookies file for
    login-protected videos is taken from ``VIDEOJOBS_COOKIES_FILE``. ``parallelism`` (else
    ``spec.parallelism``) above 1 cuts the clips in that many shards, one process each.
    """
    manifest = Path(manifest)
    try:
        worker_input, transcript, name, namespace = _load(manifest)
    except InvalidSpec as exc:
        for problem in exc.problems:
            print(f"{manifest}: {problem}", file=sys.stderr)
        return int(ExitCode.INVALID_SPEC)
    except OSError as exc:
        print(f"{manifest}: {exc.strerror or exc}", file=sys.stderr)
        return int(ExitCode.USAGE)
    storage = worker_input.spec.output.storage
    if out_dir is None and storage.s3 is None:
        out_dir = Path("videojobs-output") / name
    publisher: Publisher = publisher_for(storage, out_dir=out_dir, destination=(namespace, name))
    policy = (
        NetworkPolicy.local()
        if allow_private_networks
        else NetworkPolicy(allow_private=False, allow_files=True)
    )
    shards = parallelism or worker_input.spec.parallelism or 1
    reporter: Reporter = TerminalReporter() if progress and shards == 1 else NullReporter()
    cookies = os.environ.get("VIDEOJOBS_COOKIES_FILE")  # the Secret's stand-in on a workstation
    scratch = Path(tempfile.mkdtemp(prefix="videojobs-"))
    options = RunOptions(
        scratch=scratch,
        policy=policy,
        base_dir=manifest.parent.absolute(),
        cookies_file=Path(cookies) if cookies else None,
    )
    try:
        transcript = _transcript_within_budget(worker_input, publisher, options, transcript)
    except WorkerError as refused:
        shutil.rmtree(scratch, ignore_errors=True)
        reporter.close()
        print(f"failed: {refused.category} ({int(refused.exit_code)}): {refused}", file=sys.stderr)
        return int(refused.exit_code)
    try:
        if shards > 1:
            if progress:
                print(f"cutting in {shards} shards (one process each)", file=sys.stderr)
            run = run_shards(worker_input, transcript, publisher, options, shards)
            code, result = finish_shards(worker_input, publisher, options, run, reporter)
        else:
            runner = Runner(
                worker_input,
                reporter=reporter,
                publisher=publisher,
                options=options,
                transcript=transcript,
            )
            code, result = run_job(runner)
    finally:
        reporter.close()
        shutil.rmtree(scratch, ignore_errors=True)
    if result is not None:
        print_results(result)
    elif reporter.error is not None:
        err = reporter.error
        print(f"failed: {err.category} ({code}): {err.message}", file=sys.stderr)
    return code


# -- the demo ----------------------------------------------------------------------------------

DEMO_DURATION = 20
DEMO_CUES = [
    (0.0, 3.0, "Welcome to this short demo of videojobs."),
    (3.0, 6.5, "First we look at how a transcript becomes clips."),
    (6.5, 9.0, "Each knowledge point names a topic to cut out."),
    (9.0, 12.5, "Next, the precision modes: copy, accurate and smart."),
    (12.5, 15.5, "Smart re-encodes only up to the next keyframe."),
    (15.5, 18.0, "Finally, every clip gets a thumbnail and subtitles."),
    (18.0, 20.0, "Thanks for watching."),
]


def _demo_vtt() -> str:
    lines = ["WEBVTT", ""]
    for i, (start, end, text) in enumerate(DEMO_CUES, 1):
        lines += [str(i), f"{format_timestamp(start)} --> {format_timestamp(end)}", text, ""]
    return "\n".join(lines)


def _demo_manifest() -> dict:
    return {
        "apiVersion": "videojobs.io/v1alpha1",
        "kind": "VideoProcessingJob",
        "metadata": {"name": "demo"},
        "spec": {
            "source": {"url": "sample.mp4"},
            "transcript": {"inline": _demo_vtt(), "format": "webvtt", "language": "en"},
            "knowledgePoints": [
                {"id": "transcripts", "title": "From transcript to clips", "start": 3},
                {
                    "id": "precision",
                    "title": "Precision modes",
                    "quote": "the precision modes: copy, accurate and smart",
                },
                {"id": "extras", "title": "Thumbnails and subtitles", "cues": "6-7"},
            ],
            "output": {
                "formats": ["mp4"],
                "precision": "smart",
                "storage": {"pvc": {"claimName": "local", "path": "demo"}},
            },
        },
    }


def make_demo_inputs(directory: Path) -> Path:
    """Write ``sample.mp4`` (generated with ffmpeg's lavfi sources) and ``job.yaml``."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg is not installed (apt install ffmpeg)")
    directory.mkdir(parents=True, exist_ok=True)
    sample = directory / "sample.mp4"
    if not sample.exists():
        tmp = directory / ".sample.tmp.mp4"
        cmd = [
            "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=30:duration={DEMO_DURATION}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={DEMO_DURATION}",
            "-map", "0:v", "-map", "1:a",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-pix_fmt", "yuv420p",
            "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
            "-c:a", "aac", "-b:a", "96k", "-ac", "2", "-movflags", "+faststart",
            str(tmp),
        ]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True)
        tmp.replace(sample)
    job = directory / "job.yaml"
    header = textwrap.dedent(
        """\
        # Generated by `videojobs demo`: a 20 s test pattern with a tone, a WebVTT transcript
        # and three knowledge points (by start time, by quote, by cue range).
        """
    )
    job.write_text(header + yaml.safe_dump(_demo_manifest(), sort_keys=False, width=100))
    return job


def run_demo(out_dir: Path, *, progress: bool = True) -> int:
    """Generate a sample video and transcript (no network) and cut it into ``out_dir``: the
    clips and ``manifest.json`` there, as ``videojobs run ... --out DIR`` writes them; the
    generated input in ``out_dir/input``."""
    out_dir = Path(out_dir)
    try:
        job = make_demo_inputs(out_dir / "input")
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"demo: cannot generate the sample: {exc}", file=sys.stderr)
        return int(ExitCode.MEDIA_TOOL)
    print(f"demo input: {job}", file=sys.stderr)
    return run_local(job, out_dir, progress=progress)


__all__ = ["DirectoryPublisher", "make_demo_inputs", "print_results", "run_demo", "run_local"]
