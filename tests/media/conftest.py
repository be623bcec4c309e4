"""Fixtures of the cutting tests: small generated sources (once per session) and checkers."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.mediakit import ffprobe_json, make_video

FPS = 30
GOP = 45  # 1.5 s
TINY = (48, 36)


@dataclass(frozen=True)
class Sources:
    """Paths of the generated sources."""

    mp4: Path
    """8 s 320x240 H.264 (x264 veryfast: B-frames, CABAC) + AAC, keyframe every 1.5 s."""
    webm: Path
    """6 s VP9/Opus, keyframe every 1.5 s."""
    silent: Path
    """6 s H.264 without audio (ultrafast: no B-frames)."""
    rotated: Path
    """6 s H.264 + AAC stored 320x240 with a 90 degree display rotation."""
    vfr: Path
    """6 s H.264 + AAC: 30 fps for 3 s, then 15 fps."""
    long: Path
    """20 s 640x480 H.264 for stopping a slow cut midway."""


@pytest.fixture(scope="session")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Sources:
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is required (apt install ffmpeg)")
    root = tmp_path_factory.mktemp("cut-sources")
    return Sources(
        mp4=make_video(root / "src.mp4", duration=8, gop=GOP, preset="veryfast"),
        webm=make_video(root / "src.webm", duration=6, gop=GOP, vcodec="libvpx-vp9"),
        silent=make_video(root / "silent.mp4", duration=6, gop=GOP, audio=False),
        rotated=make_video(root / "rotated.mp4", duration=6, gop=GOP, rotation=90),
        vfr=make_video(root / "vfr.mp4", duration=6, gop=GOP, vfr=True),
        long=make_video(root / "long.mp4", duration=20, size=(640, 480), gop=60),
    )


def probe_streams(path: Path) -> dict[str, dict]:
    """First video and audio stream of ``path`` (with frames and packets counted)."""
    data = ffprobe_json(path, "-count_frames", "-count_packets")
    streams: dict[str, dict] = {"format": data["format"]}
    for s in data["streams"]:
        streams.setdefault(s["codec_type"], s)
    return streams


def video_packet_pts(path: Path) -> list[int]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts"]
        + ["-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [int(v) for v in out.split() if v.lstrip("-").isdigit()]


def decode_errors(path: Path) -> str:
    """What ``ffmpeg -v error -i out -f null -`` prints (nothing for a clean file)."""
    return subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
    ).stderr.strip()


def tiny_frames(path: Path, *args: str) -> list[bytes]:
    """Every displayed frame of ``path``, grey and tiny, for matching frames between files."""
    w, h = TINY
    data = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), *args, "-map", "0:v:0"]
        + ["-vf", f"scale={w}:{h},format=gray", "-f", "rawvideo", "pipe:1"],
        capture_output=True,
        check=True,
    ).stdout
    size = w * h
    return [data[i : i + size] for i in range(0, len(data) - size + 1, size)]


def best_match(frame: bytes, candidates: list[bytes]) -> int:
    """Index of the candidate closest to ``frame`` (sum of absolute differences)."""

    def sad(other: bytes) -> int:
        return sum(abs(a - b) for a, b in zip(frame, other, strict=True))

    return min(range(len(candidates)), key=lambda i: sad(candidates[i]))
