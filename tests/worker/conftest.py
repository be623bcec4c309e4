"""Fixtures of the worker tests: generated media (once per session) served over local HTTP."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.httpserver import MediaServer
from tests.mediakit import make_hls, make_video, run_ffmpeg


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of small test media, generated once.

    - ``a.mp4``: 8 s, 320x240, H.264/AAC, a keyframe every second (faststart);
    - ``b.webm``: 4 s VP9/Opus;
    - ``hls/index.m3u8``: ``a.mp4`` as HLS, 2 s segments;
    - ``long.mp4``: 90 s, a keyframe every 2 s, for ranged downloads; ``hls-long/``: it as HLS;
    - ``hls-multi/master.m3u8``: 4 s in two renditions, 240p and 480p;
    - ``audio.m4a``: no video stream; ``truncated.mp4``: the first half of a non-faststart MP4;
    - ``empty.mp4``: zero bytes.
    """
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is required (apt install ffmpeg)")
    root = tmp_path_factory.mktemp("media")
    make_video(root / "a.mp4", duration=8, gop=30)
    make_video(root / "b.webm", duration=4, vcodec="libvpx-vp9")
    make_hls(root / "a.mp4", root / "hls", segment_seconds=2)
    make_video(root / "long.mp4", duration=90, gop=60)
    make_hls(root / "long.mp4", root / "hls-long", segment_seconds=2)
    for height in (240, 480):  # an HLS master playlist with two renditions
        variant = make_video(root / f".v{height}.mp4", duration=4, size=(height * 4 // 3, height),
                             gop=30)  # fmt: skip
        make_hls(variant, root / "hls-multi" / f"v{height}", segment_seconds=2)
        variant.unlink()
    (root / "hls-multi" / "master.m3u8").write_text(
        "#EXTM3U\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=300000,RESOLUTION=320x240,CODECS="avc1.42c00d,mp4a.40.2"\n'
        "v240/index.m3u8\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x480,CODECS="avc1.42c01e,mp4a.40.2"\n'
        "v480/index.m3u8\n"
    )
    run_ffmpeg(["-f", "lavfi", "-i", "sine=duration=3", "-c:a", "aac", str(root / "audio.m4a")])
    plain = root / ".plain.mp4"
    run_ffmpeg(["-i", str(root / "a.mp4"), "-c", "copy", str(plain)])  # moov at the end
    data = plain.read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])
    plain.unlink()
    (root / "empty.mp4").write_bytes(b"")
    return root


@pytest.fixture
def server(media: Path) -> Iterator[MediaServer]:
    """The media directory over HTTP on 127.0.0.1 (fresh counters per test)."""
    with MediaServer(media) as srv:
        yield srv
