"""The source's own captions and chapters, with real yt-dlp and ffmpeg, offline.

- an HLS master playlist with a WebVTT subtitle rendition (yt-dlp's generic extractor reads it),
  served from 127.0.0.1 and cut by quotes found in its captions;
- an MP4 and a Matroska file with chapters written by ffmpeg, cut by their chapters (over HTTP
  and as a local path);
- a saved yt-dlp info JSON with ``chapters`` and ``automatic_captions`` planned by
  ``videojobs plan --source-info``;
- a missing language fails with the languages the source has.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.httpserver import MediaServer
from tests.mediakit import make_hls, make_video, run_ffmpeg
from videojobs.models import ExitCode
from videojobs_cli import main
from videojobs_worker.local import run_local

pytestmark = pytest.mark.media

CAPTIONS = """WEBVTT

00:00:00.000 --> 00:00:02.500
Welcome to this short lecture.

00:00:02.500 --> 00:00:05.000
First we look at containers and images.

00:00:05.000 --> 00:00:08.000
Then we talk about scheduling pods.
"""

CHAPTERS = [(0.0, 3.0, "Opening"), (3.0, 6.5, "Part 1: Pods"), (6.5, 10.0, "Part 2: Services")]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Media for this module: an HLS stream with English subtitles, files with chapters."""
    root = tmp_path_factory.mktemp("site")
    video = make_video(root / ".lecture.mp4", duration=8, gop=30)
    make_hls(video, root / "lecture" / "v", segment_seconds=2)
    subs = root / "lecture" / "subs"
    subs.mkdir()
    (subs / "en.vtt").write_text(CAPTIONS, encoding="utf-8")
    (subs / "en.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:8\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        "#EXTINF:8.0,\nen.vtt\n#EXT-X-ENDLIST\n",
        encoding="utf-8",
    )
    (root / "lecture" / "master.m3u8").write_text(
        "#EXTM3U\n"
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",'
        'DEFAULT=YES,AUTOSELECT=YES,URI="subs/en.m3u8"\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=320x240,CODECS="avc1.42c00d,mp4a.40.2",'
        'SUBTITLES="subs"\n'
        "v/index.m3u8\n",
        encoding="utf-8",
    )
    meta = root / ".chapters.txt"
    meta.write_text(
        ";FFMETADATA1\n"
        + "".join(
            f"[CHAPTER]\nTIMEBASE=1/1000\nSTART={int(s * 1000)}\nEND={int(e * 1000)}\n"
            f"title={title}\n"
            for s, e, title in CHAPTERS
        ),
        encoding="utf-8",
    )
    plain = make_video(root / ".plain.mp4", duration=10, gop=30)
    for name in ("chaptered.mp4", "chaptered.mkv"):
        run_ffmpeg(["-i", str(plain), "-i", str(meta), "-map", "0", "-map_metadata", "1",
                    "-map_chapters", "1", "-c", "copy", str(root / name)])  # fmt: skip
    return root


@pytest.fixture
def served(site: Path):
    with MediaServer(site) as server:
        yield server


def _job(tmp_path: Path, spec: dict, name: str = "from-source") -> Path:
    manifest = {
        "apiVersion": "videojobs.io/v1alpha1",
        "kind": "VideoProcessingJob",
        "metadata": {"name": name},
        "spec": {
            "output": {
                "formats": ["mp4"],
                "precision": "accurate",
                "thumbnails": False,
                "storage": {"pvc": {"claimName": "clips"}},
            },  # fmt: skip
            **spec,
        },
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return path


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def test_hls_subtitle_rendition_cut_by_quotes_from_its_captions(
    tmp_path: Path, served: MediaServer
) -> None:
    job = _job(
        tmp_path,
        {
            "source": {"url": served.url("lecture/master.m3u8")},
            "transcript": {"fromSource": {"languages": ["en"]}},
            "knowledgePoints": [
                {"id": "containers", "title": "Containers", "quote": "we look at containers"},
                {"id": "pods", "title": "Pods", "quote": "talk about scheduling pods"},
            ],
        },
    )
    out = tmp_path / "out"
    assert run_local(job, out, progress=False) == 0
    manifest = _manifest(out)
    spans = [(s["knowledgeId"], s["start"], s["end"]) for s in manifest["segments"]]
    # each starts at its quote's cue; the last one runs to the end of the source (8 s + AAC)
    assert spans[0] == ("containers", 2.5, 5.0)
    assert spans[1][:2] == ("pods", 5.0) and 8.0 <= spans[1][2] < 8.1
    assert manifest["source"]["captions"] == {
        "language": "en", "automatic": False, "format": "vtt", "cues": 3
    }  # fmt: skip
    assert (out / "02-pods-pods.vtt").read_text().count("-->") >= 1


def test_missing_caption_language_lists_what_exists(
    tmp_path: Path, served: MediaServer, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job(
        tmp_path,
        {
            "source": {"url": served.url("lecture/master.m3u8")},
            "transcript": {"fromSource": {"languages": ["de", "fr-*"]}},
            "knowledgePoints": [{"id": "a", "title": "A", "quote": "welcome to this"}],
        },
    )
    assert run_local(job, tmp_path / "out", progress=False) == int(ExitCode.INVALID_SPEC)
    err = capsys.readouterr().err
    assert "no captions in de, fr-*" in err and "uploaded: en" in err


@pytest.mark.parametrize("name", ["chaptered.mp4", "chaptered.mkv"])
def test_direct_file_cut_by_its_container_chapters(
    tmp_path: Path, served: MediaServer, name: str
) -> None:
    job = _job(
        tmp_path,
        {
            "source": {"url": served.url(name)},
            "segmentation": {"fromChapters": True, "chapterTitles": ["part *"]},
        },
    )
    out = tmp_path / "out"
    assert run_local(job, out, progress=False) == 0
    manifest = _manifest(out)
    assert [(s["title"], s["start"], s["end"]) for s in manifest["segments"]] == [
        ("Part 1: Pods", 3.0, 6.5),
        ("Part 2: Services", 6.5, 10.0),
    ]
    assert manifest["source"]["chapters"] == 3


def test_local_file_cut_by_its_chapters(tmp_path: Path, site: Path) -> None:
    job = _job(
        tmp_path,
        {"source": {"url": str(site / "chaptered.mkv")}, "segmentation": {"fromChapters": True}},
    )
    out = tmp_path / "out"
    assert run_local(job, out, progress=False) == 0
    assert [s["knowledgeId"] for s in _manifest(out)["segments"]] == [
        "ch01-opening", "ch02-part-1-pods", "ch03-part-2-services"
    ]  # fmt: skip


def test_a_source_without_chapters_fails_clearly(
    tmp_path: Path, served: MediaServer, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job(
        tmp_path,
        {
            "source": {"url": served.url("lecture/v/index.m3u8")},
            "segmentation": {"fromChapters": True},
        },
    )
    assert run_local(job, tmp_path / "out", progress=False) == int(ExitCode.INVALID_SPEC)
    assert "spec.segmentation.fromChapters: the source has no chapters" in capsys.readouterr().err


AUTO_CAPTIONS = """WEBVTT
Kind: captions
Language: en

00:00:00.000 --> 00:00:02.000
welcome everyone to the

00:00:02.000 --> 00:00:02.010
welcome everyone to the

00:00:02.010 --> 00:00:04.000
welcome everyone to the
kubernetes basics course

00:00:04.000 --> 00:00:04.010
kubernetes basics course

00:00:04.010 --> 00:00:07.000
kubernetes basics course
services come later on
"""


def _info(tmp_path: Path) -> Path:
    (tmp_path / "talk.en.vtt").write_text(AUTO_CAPTIONS, encoding="utf-8")
    info = {
        "id": "PziYflu8cB8",
        "title": "Kubernetes basics",
        "duration": 900,
        "webpage_url": "https://www.youtube.com/watch?v=PziYflu8cB8",
        "chapters": [
            {"start_time": 0, "end_time": 120, "title": "Intro"},
            {"start_time": 120, "end_time": 600, "title": "Pods"},
            {"start_time": 600, "end_time": 900, "title": "Services"},
        ],
        "automatic_captions": {
            "en": [{"ext": "json3", "url": "https://www.youtube.com/api/timedtext?fmt=json3"},
                   {"ext": "vtt", "url": "https://www.youtube.com/api/timedtext?fmt=vtt"}],
            "de": [{"ext": "vtt", "url": "https://www.youtube.com/api/timedtext?lang=de"}],
        },
        "requested_subtitles": {"en": {"ext": "vtt", "filepath": "talk.en.vtt"}},
    }  # fmt: skip
    path = tmp_path / "talk.info.json"
    path.write_text(json.dumps(info), encoding="utf-8")
    return path


def _plan_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["plan", *args, "-o", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_plan_offline_from_a_saved_info_json_by_chapters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job(tmp_path, {"source": {"url": "https://www.youtube.com/watch?v=PziYflu8cB8"},
                          "segmentation": {"fromChapters": True}})  # fmt: skip
    assert main(["validate", str(job)]) == 0
    assert "planned by the worker" in capsys.readouterr().out
    assert main(["plan", str(job)]) == 1
    assert "--source-info" in capsys.readouterr().err
    plan = _plan_json([str(job), "--source-info", str(_info(tmp_path))], capsys)
    assert [(s["title"], s["start"], s["end"]) for s in plan["segments"]] == [
        ("Intro", 0, 120), ("Pods", 120, 600), ("Services", 600, 900)
    ]  # fmt: skip


def test_plan_offline_from_automatic_captions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job(
        tmp_path,
        {
            "source": {"url": "https://www.youtube.com/watch?v=PziYflu8cB8"},
            "transcript": {"fromSource": {"languages": ["en-*", "en"]}},
            "knowledgePoints": [
                {"id": "course", "title": "The course", "quote": "kubernetes basics course"},
                {"id": "services", "title": "Services", "quote": "services come later"},
            ],
        },
    )
    plan = _plan_json([str(job), "--source-info", str(_info(tmp_path))], capsys)
    # rolling duplicates merged: each line is one cue, from its first appearance to the next
    assert [(s["knowledgeId"], s["start"], s["end"]) for s in plan["segments"]] == [
        ("course", 2.01, 4.01), ("services", 4.01, 900)
    ]  # fmt: skip
