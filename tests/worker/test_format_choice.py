"""Format selection favours what the smart cut can stream-copy (yt-dlp's real sorter)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yt_dlp

from videojobs_worker.download import DownloadOptions, build_ydl_opts, format_sort


def _fmt(fid: str, vcodec: str, acodec: str, ext: str, height: int = 720) -> dict:
    return {
        "format_id": fid,
        "url": f"https://media.example/{fid}.{ext}",
        "ext": ext,
        "vcodec": vcodec,
        "acodec": acodec,
        "height": height,
        "width": height * 16 // 9,
        "tbr": 1000,
        "protocol": "https",
    }


FORMATS = [
    _fmt("v-av1", "av01.0.05M.08", "none", "mp4"),
    _fmt("v-vp9", "vp09.00.40.08", "none", "webm"),
    _fmt("v-avc", "avc1.64001F", "none", "mp4"),
    _fmt("a-opus", "none", "opus", "webm"),
    _fmt("a-aac", "none", "mp4a.40.2", "m4a"),
]


def chosen(tmp_path: Path, outputs: tuple[str, ...], fmt: str | None = None) -> str:
    opts = build_ydl_opts(tmp_path, DownloadOptions(outputs=outputs, fmt=fmt))
    opts.pop("logger", None)
    info = {
        "id": "x",
        "title": "x",
        "extractor": "generic",
        "extractor_key": "Generic",
        "webpage_url": "https://media.example/page",
        "formats": [dict(f) for f in FORMATS],
    }
    with yt_dlp.YoutubeDL(opts) as ydl:
        result = ydl.process_ie_result(info, download=False)
    return result["format_id"]


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [
        (("mp4",), "v-avc+a-aac"),  # H.264 + AAC: copied into MP4, never AV1
        (("webm",), "v-vp9+a-opus"),  # VP9 + Opus: copied into WebM
        (("mp4", "webm"), "v-vp9+a-opus"),  # VP9 + Opus go into both
    ],
)
def test_fast_path_codecs_are_preferred(
    tmp_path: Path, outputs: tuple[str, ...], expected: str
) -> None:
    assert chosen(tmp_path, outputs) == expected


def test_a_forced_format_wins(tmp_path: Path) -> None:
    assert chosen(tmp_path, ("mp4",), fmt="v-av1+a-opus") == "v-av1+a-opus"


def test_format_sort_fields() -> None:
    assert format_sort(480, ("webm",))[:3] == ["res:480", "vcodec:vp9", "acodec:opus"]
    assert format_sort(None)[:2] == ["vcodec:h264", "acodec:aac"]
