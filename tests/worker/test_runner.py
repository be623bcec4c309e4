"""The whole worker on generated media: run, publish, report, fail, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.httpserver import MediaServer
from tests.mediakit import make_audio
from tests.worker.helpers import (
    decode_errors,
    frame_hashes,
    make_input,
    probe_duration,
    published_files,
    run,
    stray_files,
)
from videojobs.models import ExitCode
from videojobs_worker.audio import audio_packets
from videojobs_worker.guard import NetworkPolicy
from videojobs_worker.publish import STATE_DIR, sha256_file

pytestmark = pytest.mark.media


def test_http_source_end_to_end(tmp_path: Path, server: MediaServer):
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    wi = make_input(server.url("a.mp4"), formats=("mp4", "webm"), precision="accurate")
    code, result, reporter = run(wi, out, scratch)
    assert code == 0, reporter.error
    assert result is not None
    stems = ["01-p1-part-1", "02-p2-part-2"]
    expected = sorted(f"{s}.{ext}" for s in stems for ext in ("mp4", "webm", "jpg", "vtt"))
    assert published_files(out) == sorted([*expected, "manifest.json"])
    for seg, (start, end) in zip(result.segments, [(1.0, 3.0), (4.5, 7.0)], strict=True):
        assert (seg.start, seg.end, seg.precision) == (start, end, "accurate")
        for f in seg.files:
            path = out / Path(f.uri).name
            assert f.sha256 == sha256_file(path) and f.bytes == path.stat().st_size
            if f.kind == "video":
                assert abs(probe_duration(path) - (end - start)) < 0.05
                assert abs(f.duration_seconds - (end - start)) < 0.05
                assert decode_errors(path) == ""
    vtt = (out / "02-p2-part-2.vtt").read_text()
    assert "00:00:00.000 --> 00:00:02.500\nAnd this is the second topic." in vtt
    # the manifest is published last and lists every file
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["stem"] for s in manifest["segments"]] == stems
    newest_clip = max((out / n).stat().st_mtime_ns for n in expected)
    assert (out / "manifest.json").stat().st_mtime_ns >= newest_clip
    # status: stages in order, the final patch carries results, summary and manifest
    assert reporter.stages == ["Starting", "Downloading", "Probing", "Cutting", "Uploading",
                               "Finished"]  # fmt: skip
    final = reporter.patches[-1]["status"]
    assert final["segmentsSummary"] == "2/2" and final["manifestUri"].endswith("manifest.json")
    assert final["source"]["videoCodec"] == "h264" and final["source"]["durationSeconds"] == 8.0
    assert set(final) <= {"progress", "source", "segments", "segmentsSummary", "manifestUri",
                          "notes", "error"}  # fmt: skip
    assert stray_files(out, scratch) == []


def test_ranged_run_cuts_the_same_frames(tmp_path: Path, server: MediaServer, media: Path):
    segments = [(20.5, 23.0), (70.0, 72.25)]  # far enough apart to be fetched as two ranges
    full_in = make_input(server.url("long.mp4"), segments, precision="smart", partial="never")
    code, full, _ = run(full_in, tmp_path / "full", tmp_path / "s1", with_transcript=False)
    assert code == 0 and full is not None and not full.source.partial
    server.reset()
    ranged_in = make_input(server.url("long.mp4"), segments, precision="smart", partial="auto")
    code, ranged, _ = run(ranged_in, tmp_path / "ranged", tmp_path / "s2", with_transcript=False)
    assert code == 0 and ranged is not None
    assert ranged.source.partial and ranged.source.duration_seconds == 90.0
    assert ranged.downloaded is not None
    # each range file starts at (a millisecond before) the keyframe before its range: no
    # hidden pre-roll; long.mp4 has a keyframe every 2 s
    parts = [(p.start, p.end) for p in ranged.downloaded.parts]
    assert [end for _, end in parts] == [25.0, 74.25]
    for (start, _), asked in zip(parts, (18.5, 68.0), strict=True):
        assert asked - 2.1 < start <= asked
    assert server.bytes_served("long.mp4") < 0.4 * (media / "long.mp4").stat().st_size
    # the range files got x264's settings back, so smart did not fall back to accurate
    assert [s.precision for s in ranged.segments] == ["smart", "smart"], ranged.segments
    for a, b in zip(full.segments, ranged.segments, strict=True):
        clip_a = tmp_path / "full" / f"{a.stem}.mp4"
        clip_b = tmp_path / "ranged" / f"{b.stem}.mp4"
        assert frame_hashes(clip_a) == frame_hashes(clip_b)  # re-based times, same pictures
    manifest = json.loads((tmp_path / "ranged" / "manifest.json").read_text())
    assert manifest["download"]["partial"] is True


@pytest.mark.parametrize(
    ("name", "segments", "code"),
    [
        ("truncated.mp4", [(1, 2)], ExitCode.NOT_A_VIDEO),
        ("empty.mp4", [(1, 2)], ExitCode.NOT_A_VIDEO),
        ("a.mp4", [(1, 2), (20, 25)], ExitCode.PLAN_ERROR),
        ("404", [(1, 2)], ExitCode.UNAVAILABLE),
        ("html", [(1, 2)], ExitCode.UNSUPPORTED_URL),
    ],
)
def test_failures(tmp_path: Path, server: MediaServer, name: str, segments, code: ExitCode):
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    exit_code, result, reporter = run(make_input(server.url(name), segments), out, scratch)
    assert exit_code == code and result is None
    assert reporter.error is not None and reporter.error.exit_code == int(code)
    assert reporter.error.permanent is code.permanent
    assert reporter.patches[-1]["status"]["error"]["category"] == reporter.error.category
    assert published_files(out) == [] and stray_files(out, scratch) == []


@pytest.mark.parametrize("kind", ["m4a", "mp3", "opus"])
def test_audio_only_source_cut_to_its_own_container(tmp_path: Path, kind: str):
    """issue 23: a podcast (M4A, MP3, Opus) is cut into 3 clips of its own container (formats
    auto), exact to the audio frame, with WebVTT slices and the manifest, no thumbnails."""
    source = make_audio(tmp_path / "talk", kind, duration=10.0)
    planned = [(1.0, 3.0), (4.5, 7.0), (7.25, 9.9)]
    wi = make_input(str(source), planned, formats=("auto",), precision="smart")
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    code, result, reporter = run(wi, out, scratch, policy=NetworkPolicy.local())
    assert code == 0, reporter.error
    assert result is not None
    stems = ["01-p1-part-1", "02-p2-part-2", "03-p3-part-3"]
    expected = sorted(f"{s}.{ext}" for s in stems for ext in (kind, "vtt"))
    assert published_files(out) == sorted([*expected, "manifest.json"])  # no .jpg
    frame = {"m4a": 1024 / 48000, "mp3": 1152 / 44100, "opus": 0.02}[kind]
    for seg, (start, end) in zip(result.segments, planned, strict=True):
        clip = [f for f in seg.files if f.kind == "video"]
        assert [f.format for f in clip] == [kind]
        path = out / Path(clip[0].uri).name
        assert abs(clip[0].duration_seconds - (end - start)) <= frame + 0.0015
        # the frames in the file, counted apart from the worker (AAC: plus one of pre-roll)
        packets = len(audio_packets(path)) - (kind == "m4a")
        assert abs(packets * frame - (end - start)) <= frame, (packets, seg)
        assert "stream-copied" in (seg.note or ""), seg
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["stem"] for s in manifest["segments"]] == stems
    final = reporter.patches[-1]["status"]
    assert final["source"]["audioCodec"] == {"m4a": "aac", "mp3": "mp3", "opus": "opus"}[kind]
    assert "videoCodec" not in final["source"]
    assert stray_files(out, scratch) == []


@pytest.mark.parametrize("partial", ["never", "always"])
def test_audio_only_source_over_http(tmp_path: Path, server: MediaServer, partial: str):
    """Was NotAVideo (exit 17): an M4A served over HTTP is cut to M4A clips; asked for ranged
    downloads, it is fetched whole (ranges are re-timed by their video)."""
    wi = make_input(
        server.url("audio.m4a"), [(0.5, 1.5), (1.7, 2.9)], formats=("auto",), partial=partial
    )
    code, result, reporter = run(wi, tmp_path / "out", tmp_path / "s", with_transcript=False)
    assert code == 0, reporter.error
    assert result is not None and [s.precision for s in result.segments] == ["smart", "smart"]
    assert not result.source.partial
    assert published_files(tmp_path / "out") == [
        "01-p1-part-1.m4a", "02-p2-part-2.m4a", "manifest.json"
    ]  # fmt: skip


def test_an_audio_format_for_a_video_source_is_a_spec_error(tmp_path: Path, media: Path):
    wi = make_input(str(media / "a.mp4"), formats=("mp3",))
    code, result, reporter = run(wi, tmp_path / "out", tmp_path / "s", policy=NetworkPolicy.local())
    assert code == ExitCode.INVALID_SPEC and result is None
    assert reporter.error is not None and "hold audio only" in reporter.error.message


def test_an_audio_only_source_cut_to_mp4_gives_audio_only_mp4(tmp_path: Path, media: Path):
    wi = make_input(str(media / "audio.m4a"), [(0.5, 2.5)], formats=("mp4",), precision="accurate")
    code, result, reporter = run(wi, tmp_path / "out", tmp_path / "s", policy=NetworkPolicy.local())
    assert code == 0, reporter.error
    assert result is not None
    assert published_files(tmp_path / "out") == ["01-p1-part-1.mp4", "01-p1-part-1.vtt",
                                                 "manifest.json"]  # fmt: skip


@pytest.mark.parametrize("via_redirect", [False, True])
def test_cluster_mode_blocks_private_addresses(
    tmp_path: Path, server: MediaServer, via_redirect: bool
):
    url = server.url("a.mp4")
    policy = NetworkPolicy.cluster()
    if via_redirect:
        # a public-looking start would need DNS; allow the first hop explicitly instead
        policy = NetworkPolicy.cluster(allowed_networks=["127.0.0.1/32"])
        url = server.redirect_url(url.replace("127.0.0.1", "127.0.0.3"))
    code, _, reporter = run(make_input(url), tmp_path / "out", tmp_path / "s", policy=policy)
    assert code == ExitCode.BLOCKED_ADDRESS, reporter.error
    assert reporter.error is not None and reporter.error.reason == "BlockedAddress"
    assert not any(r.path == "a.mp4" for r in server.requests)


def test_cluster_mode_refuses_local_files(tmp_path: Path, media: Path):
    wi = make_input(str(media / "a.mp4"))
    code, _, _ = run(wi, tmp_path / "out", tmp_path / "s", policy=NetworkPolicy.cluster())
    assert code == ExitCode.BLOCKED_ADDRESS
    code, result, _ = run(wi, tmp_path / "out", tmp_path / "s", policy=NetworkPolicy.local())
    assert code == 0 and result is not None


def test_rerun_resumes_without_recutting(tmp_path: Path, media: Path):
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    wi = make_input(str(media / "a.mp4"), [(0.5, 2.0), (2.5, 4.0), (5.0, 7.5)], precision="copy")
    code, first, _ = run(wi, out, scratch, policy=NetworkPolicy.local())
    assert code == 0 and first is not None and first.cut == [1, 2, 3]
    mtimes = {n: (out / n).stat().st_mtime_ns for n in published_files(out)}
    # a crash after clip 1 and 3 were published: no manifest, clip 2 missing, and
    # clip 3's thumbnail corrupted in place (same size) so its checksum no longer matches
    (out / "manifest.json").unlink()
    (out / "02-p2-part-2.mp4").unlink()
    thumb = out / "03-p3-part-3.jpg"
    data = bytearray(thumb.read_bytes())
    data[100] ^= 0xFF
    thumb.write_bytes(bytes(data))
    code, second, _ = run(wi, out, scratch, policy=NetworkPolicy.local())
    assert code == 0 and second is not None
    assert second.skipped == [1] and second.cut == [2, 3]
    for name in ("01-p1-part-1.mp4", "01-p1-part-1.jpg", "01-p1-part-1.vtt"):
        assert (out / name).stat().st_mtime_ns == mtimes[name]  # not cut or written again
    assert (out / "03-p3-part-3.mp4").stat().st_mtime_ns > mtimes["03-p3-part-3.mp4"]
    assert [s.to_dict() for s in second.segments][0] == first.segments[0].to_dict()
    # a different spec for the same stems is not "already published"
    changed = make_input(str(media / "a.mp4"), [(0.5, 2.5), (2.5, 4.0), (5.0, 7.5)])
    code, third, _ = run(changed, out, scratch, policy=NetworkPolicy.local())
    assert code == 0 and third is not None and 1 in third.cut
    assert sorted(p.name for p in (out / STATE_DIR).iterdir()) == sorted(
        f"{n}.json" for n in published_files(out)
    )


def test_rerun_of_a_finished_job_downloads_nothing(
    tmp_path: Path, server: MediaServer, media: Path
):
    out = tmp_path / "out"
    wi = make_input(server.url("long.mp4"), [(1.0, 2.0)], precision="copy")
    code, first, _ = run(wi, out, tmp_path / "s", with_transcript=False)
    assert code == 0 and first is not None and first.downloaded is not None
    (out / "manifest.json").unlink()  # as if the first run died just before the manifest
    server.reset()
    code, second, reporter = run(wi, out, tmp_path / "s", with_transcript=False)
    assert code == 0 and second is not None, reporter.error
    assert second.downloaded is None and second.cut == [] and second.skipped == [1]
    assert (out / "manifest.json").exists()
    # only the lookup and the header probe touched the source
    assert server.bytes_served("long.mp4") < 0.2 * (media / "long.mp4").stat().st_size
    assert reporter.patches[-1]["status"]["segmentsSummary"] == "1/1"
