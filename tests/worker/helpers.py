"""Helpers of the worker tests: build inputs, run the runner, look at what it published."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from videojobs.models import VideoProcessingJobSpec, WorkerInput
from videojobs_worker.guard import NetworkPolicy
from videojobs_worker.progress import Reporter
from videojobs_worker.publish import DirectoryPublisher, Publisher
from videojobs_worker.runner import Runner, RunOptions, RunResult, run_job

VTT = """WEBVTT

1
00:00:00.000 --> 00:00:02.000
Hello and welcome.

2
00:00:02.000 --> 00:00:04.500
The first topic starts here.

3
00:00:04.500 --> 00:00:08.000
And this is the second topic.
"""


def make_input(
    url: str,
    segments: list[tuple[float, float]] = ((1.0, 3.0), (4.5, 7.0)),  # type: ignore[assignment]
    *,
    precision: str = "smart",
    formats: tuple[str, ...] = ("mp4",),
    partial: str = "never",
    **worker: Any,
) -> WorkerInput:
    """A WorkerInput with explicit segments.

    Explicit segments and a transcript are exclusive in the spec; :func:`run` hands the runner
    the transcript :data:`VTT` directly, so that subtitles are produced too.
    """
    spec: dict[str, Any] = {
        "source": {"url": url, "partialDownload": partial},
        "segments": [
            {"start": f"{s:.3f}", "end": f"{e:.3f}", "title": f"Part {i}", "knowledgeId": f"p{i}"}
            for i, (s, e) in enumerate(segments, 1)
        ],
        "output": {
            "formats": list(formats),
            "precision": precision,
            "storage": {"pvc": {"claimName": "clips", "path": "job"}},
        },
    }
    return WorkerInput(spec=VideoProcessingJobSpec.model_validate(spec), **worker)


class RecordingReporter(Reporter):
    """Keeps every status patch it would have sent, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.patches: list[dict[str, Any]] = []
        self.stages: list[str] = []

    def _emit(self, *, force: bool) -> None:
        patch = self.status_patch()
        self.patches.append(patch)
        stage = patch["status"]["progress"]["stage"]
        if not self.stages or self.stages[-1] != stage:
            self.stages.append(stage)


def run(
    worker_input: WorkerInput,
    out: Path,
    scratch: Path,
    *,
    policy: NetworkPolicy | None = None,
    publisher: Publisher | None = None,
    with_transcript: bool = True,
) -> tuple[int, RunResult | None, RecordingReporter]:
    """Run the runner in this process; returns the exit code, the result and the reporter."""
    from videojobs.transcripts import parse_transcript

    reporter = RecordingReporter()
    runner = Runner(
        worker_input,
        reporter=reporter,
        publisher=publisher or DirectoryPublisher(out),
        options=RunOptions(scratch=scratch, policy=policy, retries=1, backoff=0.05, workers=2),
        transcript=parse_transcript(VTT) if with_transcript else None,
    )
    code, result = run_job(runner)
    return code, result, reporter


def published_files(out: Path) -> list[str]:
    """Names of the files in an output directory (hidden state excluded)."""
    if not out.exists():
        return []
    return sorted(p.name for p in out.iterdir() if p.is_file() and not p.name.startswith("."))


def stray_files(*dirs: Path) -> list[str]:
    """Temporary files or directories left anywhere under ``dirs``."""
    found: list[str] = []
    for d in dirs:
        if d.exists():
            found += [
                str(p) for p in d.rglob("*") if ".tmp-" in p.name or p.name.startswith("job-")
            ]
    return found


def probe_duration(path: Path) -> float:
    """The video stream's duration (the container's for WebM, whose streams carry none)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=duration:format=duration", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    data = json.loads(out)
    return float(data["streams"][0].get("duration") or data["format"]["duration"])


def decode_errors(path: Path) -> str:
    """ffmpeg's complaints when decoding ``path`` completely (empty when clean)."""
    proc = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True, text=True,
    )  # fmt: skip
    return proc.stderr.strip()


def frame_hashes(path: Path) -> list[str]:
    """MD5 of every decoded video frame (framemd5), to compare pictures across files."""
    proc = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "framemd5",
         "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [line.rsplit(",", 1)[1].strip() for line in proc.stdout.splitlines() if line[:1] != "#"]
