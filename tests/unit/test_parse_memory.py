"""Parsing memory outside the operator (issue 24 item 9): ``videojobs validate`` and ``plan``
read a manifest and its transcript within :data:`videojobs.budget.PARSE_MEMORY` (512 MiB) and
at most :data:`videojobs.validation.MAX_YAML_NODES` YAML values; running out is exit 1 with a
message, never gigabytes or minutes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from videojobs.budget import PARSE_MEMORY

JOB = """\
apiVersion: videojobs.io/v1alpha1
kind: VideoProcessingJob
metadata: {{name: mem}}
spec:
  source: {{url: "https://e.x/v.mp4"}}
  transcript:
    configMapKeyRef: {{name: c, key: {key}}}
    format: {fmt}
  knowledgePoints:
    - {{id: a, title: A, start: "00:00:01"}}
  output:
    storage:
      pvc: {{claimName: x, path: mem}}
"""
MEASURE = """\
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(proc.stderr)
print("RC", proc.returncode)
print("PEAK", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
"""


def measured(*args: str) -> tuple[int, str, int, float]:
    """Exit code, stderr, peak RSS (bytes) and seconds of ``videojobs ARGS``, alone in a fresh
    parent (so the peak is this command's only)."""
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, sys.executable, "-m", "videojobs_cli", *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    took = time.monotonic() - t0
    lines = proc.stdout.splitlines()
    rc = int(next(x for x in lines if x.startswith("RC "))[3:])
    peak = int(next(x for x in lines if x.startswith("PEAK "))[5:])
    return rc, proc.stdout, peak, took


@pytest.fixture
def surrogates(tmp_path: Path) -> Path:
    """A 12 MB JSON transcript of escaped surrogate pairs (1.2 GB peak before the budget)."""
    text = "\\ud83d\\ude00" * ((12 * 1024 * 1024) // 12)
    (tmp_path / "captions.json").write_text('[{"start": 0, "end": 5, "text": "' + text + '"}]')
    (tmp_path / "job.yaml").write_text(JOB.format(key="captions.json", fmt="json"))
    return tmp_path / "job.yaml"


@pytest.mark.parametrize("command", ["validate", "plan", "run"])
def test_a_transcript_bomb_is_refused_within_the_budget(
    surrogates: Path, command: str, tmp_path: Path
) -> None:
    extra = ["--out", str(tmp_path / "out"), "--no-progress"] if command == "run" else []
    rc, out, peak, _ = measured(command, str(surrogates), *extra)
    assert rc == (10 if command == "run" else 1), out  # run: ExitCode.INVALID_SPEC
    assert "PARSE_MEMORY" in out and "Traceback" not in out
    assert peak < PARSE_MEMORY + 256 * 2**20, peak / 2**20


def test_run_parses_a_transcript_it_fetches_by_url_within_the_budget(
    surrogates: Path, tmp_path: Path
) -> None:
    """``videojobs run`` fetches a ``transcript.url`` itself (``_load`` cannot parse it): the
    fetched transcript is parsed under the same budget, before any clip or shard starts."""
    from tests.httpserver import MediaServer
    from tests.mediakit import make_video

    make_video(surrogates.parent / "v.mp4", duration=3)  # a source that downloads
    job = tmp_path / "url.yaml"
    with MediaServer(surrogates.parent) as served:
        spec = JOB.replace(
            "configMapKeyRef: {{name: c, key: {key}}}", f"url: {served.url('captions.json')}"
        ).replace("https://e.x/v.mp4", served.url("v.mp4"))
        job.write_text(spec.format(fmt="json"))
        out_dir = str(tmp_path / "out")
        rc, out, peak, _ = measured("run", str(job), "--out", out_dir, "--no-progress")
    assert rc == 10, out  # ExitCode.INVALID_SPEC
    assert "TranscriptTooLarge" in out and "PARSE_MEMORY" in out and "Traceback" not in out
    assert peak < PARSE_MEMORY + 256 * 2**20, peak / 2**20


def test_a_manifest_of_millions_of_values_is_refused_quickly(tmp_path: Path) -> None:
    items = ",".join(["1"] * 2_000_000)
    manifest = tmp_path / "bomb.yaml"
    manifest.write_text(
        "apiVersion: videojobs.io/v1alpha1\nkind: VideoProcessingJob\nmetadata: {name: x}\n"
        f'spec:\n  source: {{url: "https://e.x/v.mp4"}}\n  junk: [{items}]\n'
    )
    rc, out, peak, took = measured("validate", str(manifest))
    assert rc == 1 and "MAX_YAML_NODES" in out, out
    assert took < 60, took
    assert peak < 400 * 2**20, peak / 2**20


def test_a_large_genuine_transcript_still_validates(tmp_path: Path) -> None:
    cues = [
        f"{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000 --> "
        f"{(i + 1) // 3600:02d}:{(i + 1) // 60 % 60:02d}:{(i + 1) % 60:02d}.000\n"
        f"Cue number {i} says something reasonably long about the topic at hand.\n"
        for i in range(40_000)
    ]
    (tmp_path / "captions.vtt").write_text("WEBVTT\n\n" + "\n".join(cues))
    (tmp_path / "job.yaml").write_text(JOB.format(key="captions.vtt", fmt="webvtt"))
    rc, out, _, _ = measured("validate", str(tmp_path / "job.yaml"))
    assert rc == 0, out


def test_the_budget_is_restored_after_reading() -> None:
    import resource

    from videojobs.budget import memory_budget

    before = resource.getrlimit(resource.RLIMIT_AS)
    with pytest.raises(MemoryError), memory_budget(64 * 2**20):
        bytearray(256 * 2**20)
    assert resource.getrlimit(resource.RLIMIT_AS) == before
    assert len(bytearray(256 * 2**20)) == 256 * 2**20


CAPTIONS_BOMB = """\
import sys
from videojobs.errors import InvalidSpec
from videojobs.models import VideoProcessingJobSpec
from videojobs.sourceinfo import resolve_from_source

pairs = "\\\\ud83d\\\\ude00" * ((12 * 1024 * 1024) // 12)
bomb = '[{"start": 0, "end": 5, "text": "' + pairs + '"}]'
spec = VideoProcessingJobSpec.model_validate({
    "source": {"url": "https://e.x/v"},
    "transcript": {"fromSource": {"languages": ["en"]}},
    "knowledgePoints": [{"id": "a", "title": "A", "start": "00:00:01"}],
    "output": {"storage": {"pvc": {"claimName": "x"}}},
})
info = {"duration": 60, "subtitles": {"en": [{"ext": "json", "data": bomb}]}}
def vm(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key + ":"))

before = vm("VmSize")
try:
    resolve_from_source(spec, info, None, lambda track: track.data or "")
except InvalidSpec as exc:
    print("REFUSED", exc)
print("GROWTH", vm("VmPeak") - before)
"""


def test_captions_from_the_source_are_parsed_within_the_budget() -> None:
    """``transcript.fromSource``: captions fetched from the source's site (``videojobs run``
    with nothing else bounding the process) are parsed within the same budget."""
    proc = subprocess.run(
        [sys.executable, "-c", CAPTIONS_BOMB], capture_output=True, text=True, timeout=300
    )
    assert "REFUSED" in proc.stdout, proc.stdout + proc.stderr
    assert "spec.transcript.fromSource" in proc.stdout and "PARSE_MEMORY" in proc.stdout
    # the budget bounds the address space the parse may add (RLIMIT_AS = size + PARSE_MEMORY);
    # resident memory may also fill what was mapped before, so the growth is what is checked
    growth = int(next(x for x in proc.stdout.splitlines() if x.startswith("GROWTH "))[7:])
    assert growth <= PARSE_MEMORY + 16 * 2**20, growth / 2**20
