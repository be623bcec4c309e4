"""``videojobs validate``/``plan``/``run`` never follow a transcript file's symlink out of the
manifest's folder (issue 24 item 8): a pull request adding ``captions.vtt -> /proc/self/environ``
must not make a CI print its own environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MANIFEST = """\
apiVersion: videojobs.io/v1alpha1
kind: VideoProcessingJob
metadata:
  name: onboarding
spec:
  source:
    url: "https://media.example.org/onboarding.mp4"
  transcript:
    configMapKeyRef: {name: intro-captions, key: captions.vtt}
  knowledgePoints:
    - {id: one, title: One, start: "00:00:01"}
  output:
    storage:
      pvc: {claimName: video-clips, path: onboarding}
"""
VTT = "WEBVTT\n\n00:00:00.000 --> 00:00:05.000\nHello.\n\n00:00:05.000 --> 00:00:09.000\nBye.\n"
CANARY = "CI_DEPLOY_TOKEN=canary-3f9a"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "videojobs_cli", *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "job.yaml").write_text(MANIFEST)
    return folder


@pytest.mark.parametrize("command", ["validate", "plan", "run"])
def test_a_symlink_out_of_the_folder_is_refused(repo: Path, tmp_path: Path, command: str) -> None:
    secret = tmp_path / "secret.env"
    secret.write_text(CANARY + "\n")
    (repo / "captions.vtt").symlink_to(secret)
    args = [command, str(repo / "job.yaml")]
    if command == "run":
        args += ["--out", str(tmp_path / "out"), "--no-progress"]
    proc = _cli(*args)
    assert proc.returncode != 0
    assert "canary" not in proc.stdout + proc.stderr
    assert "symlink out of its folder" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_proc_self_environ_is_never_printed(repo: Path) -> None:
    (repo / "captions.vtt").symlink_to("/proc/self/environ")
    proc = _cli("validate", str(repo / "job.yaml"), env={"CI_DEPLOY_TOKEN": "canary-3f9a"})
    assert proc.returncode == 1
    assert "canary" not in proc.stdout + proc.stderr
    assert "symlink out of its folder" in proc.stderr


def test_a_fifo_next_to_the_manifest_is_refused_without_blocking(repo: Path) -> None:
    os.mkfifo(repo / "captions.vtt")
    proc = _cli("validate", str(repo / "job.yaml"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr


def test_a_regular_file_and_a_symlink_inside_the_folder_are_read(repo: Path) -> None:
    (repo / "real.vtt").write_text(VTT)
    (repo / "captions.vtt").symlink_to("real.vtt")
    proc = _cli("validate", str(repo / "job.yaml"))
    assert proc.returncode == 0, proc.stderr
    (repo / "captions.vtt").unlink()
    (repo / "captions.vtt").write_text(VTT)
    proc = _cli("plan", str(repo / "job.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert "One" in proc.stdout
