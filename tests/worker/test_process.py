"""``videojobs-worker`` as a real process: cluster-mode run, SIGTERM mid-cut, doctor, demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.httpserver import MediaServer
from tests.worker.helpers import make_input, published_files
from videojobs.models import INPUT_ENV, ExitCode
from videojobs_worker.local import run_demo
from videojobs_worker.publish import STATE_DIR, sha256_file

pytestmark = pytest.mark.media


def _env(tmp_path: Path, worker_input_json: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            INPUT_ENV: worker_input_json,
            "VIDEOJOBS_SCRATCH": str(tmp_path / "scratch"),
            "VIDEOJOBS_OUTPUT_ROOT": str(tmp_path / "out"),
        }
    )
    return env


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain ``text`` (``pgrep -f`` without procps)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            args = Path("/proc", pid, "cmdline").read_bytes().split(b"\0")
        except OSError:  # the process ended meanwhile
            continue
        line = " ".join(a.decode(errors="replace") for a in args)
        if text in line:
            found.append(line)
    return found


def test_processes_mentioning_finds_a_running_process(tmp_path: Path):
    marker = str(tmp_path / "marker")
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()", marker],
                            stdin=subprocess.PIPE)  # fmt: skip
    try:  # the new process's command line shows up in /proc once it has started
        deadline = time.monotonic() + 30
        while not _processes_mentioning(marker):
            assert proc.poll() is None and time.monotonic() < deadline, "never seen in /proc"
            time.sleep(0.01)
        assert all(marker in line for line in _processes_mentioning(marker))
    finally:
        proc.communicate(b"")
    assert _processes_mentioning(marker) == []


def _worker(*args: str) -> list[str]:
    return [sys.executable, "-m", "videojobs_worker", *args]


def test_cluster_run_as_a_process(tmp_path: Path, server: MediaServer):
    url = server.url("a.mp4")
    wi = make_input(url, [(1.0, 2.5)], precision="copy", allow_private_networks=True)
    proc = subprocess.run(
        _worker("run"), env=_env(tmp_path, wi.model_dump_json(by_alias=True)),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out" / "job"  # storage.pvc.path under the mount
    assert published_files(out) == ["01-p1-part-1.jpg", "01-p1-part-1.mp4", "manifest.json"]
    assert list((tmp_path / "scratch").iterdir()) == []


def test_cluster_run_refuses_loopback_without_allow_list(tmp_path: Path, server: MediaServer):
    wi = make_input(server.url("a.mp4"))
    proc = subprocess.run(
        _worker("run"), env=_env(tmp_path, wi.model_dump_json(by_alias=True)),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == ExitCode.BLOCKED_ADDRESS, proc.stderr
    assert "BlockedAddress" in proc.stderr and server.requests == []


def test_bad_input_is_a_usage_error(tmp_path: Path):
    proc = subprocess.run(
        _worker("run"), env=_env(tmp_path, '{"spec": {}}'), capture_output=True, text=True
    )
    assert proc.returncode == ExitCode.USAGE and "VIDEOJOBS_INPUT: spec.source" in proc.stderr


def test_sigterm_while_cutting(tmp_path: Path, server: MediaServer):
    # slow enough to be caught in the middle: VP9 re-encodes of four 10 s clips
    segments = [(0.5, 10.5), (20.5, 30.5), (40.5, 50.5), (60.5, 70.5)]
    wi = make_input(
        server.url("long.mp4"), segments, precision="accurate", formats=("webm",),
        allow_private_networks=True,
    )  # fmt: skip
    spec = json.loads(wi.model_dump_json(by_alias=True))
    spec["spec"]["output"]["quality"] = {"preset": "medium"}
    scratch, out = tmp_path / "scratch", tmp_path / "out" / "job"
    proc = subprocess.Popen(
        _worker("run"), env=_env(tmp_path, json.dumps(spec)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not list(scratch.glob("job-*/clips/*/*.webm")):  # an ffmpeg is writing a clip
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "cutting never started"
            time.sleep(0.05)
        time.sleep(0.3)  # part of the scenario: the signal comes while ffmpeg is mid-clip
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == ExitCode.TERMINATED, stderr
    assert "Terminated" in stderr
    assert list(scratch.iterdir()) == []  # the temporary directory is gone
    names = published_files(out)
    assert "manifest.json" not in names and len(names) < 2 * len(segments)
    for name in names:  # whatever was published is complete and matches its record
        record = json.loads((out / STATE_DIR / f"{name}.json").read_text())
        assert record["sha256"] == sha256_file(out / name)
    assert not [p for p in out.parent.rglob("*") if ".tmp-" in p.name]
    assert _processes_mentioning(str(scratch)) == []  # no ffmpeg left running on our scratch files


def test_sigterm_while_downloading(tmp_path: Path, server: MediaServer):
    url = server.slow_url("long.mp4", 200_000)  # about 40 s for the whole file
    wi = make_input(url, [(1.0, 2.0)], allow_private_networks=True)
    scratch = tmp_path / "scratch"
    proc = subprocess.Popen(
        _worker("run"), env=_env(tmp_path, wi.model_dump_json(by_alias=True)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while server.bytes_served("long.mp4") < 300_000:  # the download is under way
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the download never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == ExitCode.TERMINATED, stderr
    assert list(scratch.iterdir()) == []
    assert published_files(tmp_path / "out" / "job") == []


def test_doctor(tmp_path: Path):
    env = _env(tmp_path, "")
    del env[INPUT_ENV]
    proc = subprocess.run(_worker("doctor", "--min-free-mib", "1"), env=env, capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.startswith("ok   ffmpeg: ") and "ok   scratch: " in proc.stdout
    # a storage directory that cannot be created fails the check, with a clear line
    blocker = tmp_path / "file"
    blocker.write_text("x")
    env["VIDEOJOBS_OUTPUT_ROOT"] = str(blocker)
    env[INPUT_ENV] = make_input("http://example.com/a.mp4").model_dump_json(by_alias=True)
    proc = subprocess.run(_worker("doctor"), env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "FAIL storage: output directory" in proc.stdout


def test_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert run_demo(tmp_path, progress=False) == 0
    # the layout of `videojobs run ... --out DIR`: clips and manifest.json in DIR itself
    clips = tmp_path
    names = published_files(clips)
    assert len([n for n in names if n.endswith(".mp4")]) == 3 and "manifest.json" in names
    assert (tmp_path / "input" / "job.yaml").is_file()
    manifest = json.loads((clips / "manifest.json").read_text())
    assert [s["knowledgeId"] for s in manifest["segments"]] == [
        "transcripts", "precision", "extras"
    ]  # fmt: skip
    # every file named relative to the manifest (the folder can be moved or served)
    uris = [f["uri"] for s in manifest["segments"] for f in s["files"]]
    assert uris and not any("://" in u or u.startswith("/") for u in uris), uris
    assert all((clips / u).is_file() for u in uris)
    out = capsys.readouterr().out
    assert "01-transcripts-from-transcript-to-clips" in out and "manifest:" in out


def test_run_local_resolves_files_next_to_the_manifest(
    tmp_path: Path, media: Path, capsys: pytest.CaptureFixture[str]
):
    from tests.worker.helpers import VTT
    from videojobs_worker.local import run_local

    (tmp_path / "talk.mp4").write_bytes((media / "a.mp4").read_bytes())
    (tmp_path / "talk.vtt").write_text(VTT)
    (tmp_path / "job.yaml").write_text(
        "apiVersion: videojobs.io/v1alpha1\n"
        "kind: VideoProcessingJob\n"
        "metadata: {name: talk}\n"
        "spec:\n"
        "  source: {url: talk.mp4}\n"
        "  transcript: {configMapKeyRef: {name: talk-transcript, key: talk.vtt}}\n"
        "  knowledgePoints:\n"
        "    - {id: first, title: First topic, quote: the first topic starts here}\n"
        "    - {id: second, title: Second topic, quote: and this is the second topic}\n"
        "  output:\n"
        "    precision: copy\n"
        "    storage: {pvc: {claimName: clips}}\n"
    )
    out = tmp_path / "clips"
    assert run_local(tmp_path / "job.yaml", out, progress=False) == 0
    assert published_files(out) == sorted(
        [f"01-first-first-topic.{e}" for e in ("jpg", "mp4", "vtt")]
        + [f"02-second-second-topic.{e}" for e in ("jpg", "mp4", "vtt")]
        + ["manifest.json"]
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(s["start"], s["end"]) for s in manifest["segments"]] == [(2.0, 4.5), (4.5, 8.0)]
    assert "02-second-second-topic" in capsys.readouterr().out
    # a broken manifest is reported with its field, exit 10
    (tmp_path / "bad.yaml").write_text((tmp_path / "job.yaml").read_text().replace("copy", "fast"))
    assert run_local(tmp_path / "bad.yaml", out, progress=False) == ExitCode.INVALID_SPEC
    assert "spec.output.precision" in capsys.readouterr().err
