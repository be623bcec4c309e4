"""Audio-only sources (issue 23): M4A, MP3, Opus (Ogg and WebM), FLAC and WAV cut into 3 clips
each, exact to the audio frame (stream copy: the very frames of the source, from the right
place) or to the sample (re-encode, lossless kinds compared sample by sample)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.mediakit import make_audio
from videojobs.models import PlannedSegment, Quality
from videojobs_worker.audio import (
    audio_packets,
    cut_audio_clip,
    frame_window,
    output_format,
    probe_audio,
)
from videojobs_worker.errors import WorkerError
from videojobs_worker.probe import probe
from videojobs_worker.verify import ClipFacts, StreamFacts, audio_mismatches

RANGES = [(1.234, 4.567), (6.01, 9.99), (12.345, 19.5)]
"""Three clips, none starting on a frame boundary; the last ends near the source's end."""


def _segments() -> list[PlannedSegment]:
    return [
        PlannedSegment(index=i, title=f"c{i}", stem=f"c{i}", start=s, end=e)
        for i, (s, e) in enumerate(RANGES, 1)
    ]


def _hashes(path: Path) -> list[str]:
    proc = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_data_hash", "md5"]
        + ["-show_entries", "packet=data_hash", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [line.strip(", ") for line in proc.stdout.splitlines() if "MD5:" in line]


def _pcm(path: Path, rate: int) -> bytes:
    proc = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-ar", str(rate)]
        + ["-"],
        capture_output=True,
        check=True,
    )
    return proc.stdout


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    where = tmp_path_factory.mktemp("audio")
    return {kind: make_audio(where / kind, kind) for kind in ("m4a", "mp3", "opus", "webm")}


def test_a_video_probe_still_refuses_audio_but_probe_audio_reads_it(sources) -> None:
    with pytest.raises(WorkerError) as caught:
        probe(sources["mp3"])
    assert caught.value.reason == "NotAVideo"
    info = probe_audio(sources["mp3"])
    assert info is not None and info.codec == "mp3" and abs(info.duration - 20.0) < 0.1


@pytest.mark.parametrize(
    ("kind", "auto"), [("m4a", "m4a"), ("mp3", "mp3"), ("opus", "opus"), ("webm", "webm")]
)
def test_lossy_sources_cut_by_stream_copy_exact_to_the_audio_frame(
    sources, tmp_path: Path, kind: str, auto: str
) -> None:
    info = probe_audio(sources[kind])
    assert info is not None
    fmt = output_format("auto", info)
    assert fmt == auto
    packets = audio_packets(info.path)
    source_hashes = _hashes(info.path)
    for seg in _segments():
        dest = tmp_path / f"{seg.stem}.{fmt}"
        outcome = cut_audio_clip(info, seg, fmt, "smart", Quality(), dest)
        frame = max(p.duration for p in packets)
        assert abs(outcome.duration - seg.duration) <= frame + 0.0015, (seg, outcome)
        assert abs(outcome.start_offset) <= frame / 2 + 1e-6
        assert "stream-copied" in (outcome.note or "")
        # the very frames of the source, from the frame boundary nearest the plan
        # (an Opus clip keeps dropping the source's pre-skip at its start: aimed that much early)
        skip = info.skip if fmt in ("opus", "webm") else 0.0
        first, last = frame_window(packets, seg.start - skip, seg.end)
        clip = _hashes(dest)
        if fmt == "m4a":  # one frame of decoder pre-roll, hidden by the edit list
            assert clip == source_hashes[first - 1 : last + 1]
        else:
            assert clip == source_hashes[first : last + 1]
        decode = subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(dest), "-f", "null", "-"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert decode.returncode == 0


@pytest.mark.parametrize("kind", ["m4a", "mp3", "opus"])
def test_accurate_reencodes_exact_to_the_sample(sources, tmp_path: Path, kind: str) -> None:
    info = probe_audio(sources[kind])
    assert info is not None
    seg = _segments()[1]
    dest = tmp_path / f"a.{kind}"
    outcome = cut_audio_clip(info, seg, kind, "accurate", Quality(), dest)
    assert outcome.precision_used == "accurate" and "re-encoded" in (outcome.note or "")
    frame = max(p.duration for p in audio_packets(dest))
    assert abs(outcome.duration - seg.duration) <= frame + 0.0015


def test_flac_source_cut_to_flac_sample_exact(tmp_path: Path) -> None:
    flac = make_audio(tmp_path / "src", "flac", duration=8.0)
    info = probe_audio(flac)
    assert info is not None and output_format("auto", info) == "flac"
    source = _pcm(flac, 44100)
    for seg in _segments()[:2]:
        out = cut_audio_clip(info, seg, "flac", "smart", Quality(), tmp_path / f"{seg.stem}.flac")
        assert "lossless" in (out.note or "")
        first, n = round(seg.start * 44100), round((seg.end - seg.start) * 44100)
        assert _pcm(out.path, 44100) == source[2 * first : 2 * (first + n)]


def test_mp3_into_m4a_is_reencoded_and_wav_is_sample_exact(tmp_path: Path) -> None:
    wav = make_audio(tmp_path / "src", "wav", duration=8.0)
    info = probe_audio(wav)
    assert info is not None and output_format("auto", info) == "wav"
    seg = PlannedSegment(index=1, title="x", stem="x", start=1.2345, end=5.4321)
    outcome = cut_audio_clip(info, seg, "wav", "smart", Quality(), tmp_path / "x.wav")
    source = _pcm(wav, 44100)
    clip = _pcm(outcome.path, 44100)
    first, n = round(seg.start * 44100), round((seg.end - seg.start) * 44100)
    assert len(clip) // 2 == n
    assert clip == source[2 * first : 2 * (first + n)]
    flac = cut_audio_clip(info, seg, "flac", "smart", Quality(), tmp_path / "x.flac")
    assert _pcm(flac.path, 44100) == clip
    mp3 = make_audio(tmp_path / "m", "mp3", duration=8.0)
    minfo = probe_audio(mp3)
    assert minfo is not None
    out = cut_audio_clip(minfo, seg, "m4a", "smart", Quality(), tmp_path / "x.m4a")
    assert "mp3 cannot be stream-copied into m4a" in (out.note or "")
    assert abs(out.duration - seg.duration) < 0.03


def _facts(start: float, packets: int, frame: float = 0.02) -> ClipFacts:
    audio = StreamFacts(
        kind="audio",
        codec="opus",
        start=start,
        packets=packets,
        first_pts=start,
        last_pts=start + (packets - 1) * frame,
        last_duration=frame,
        dts_backwards=0,
        duplicate_pts=0,
        max_packet_duration=frame,
    )
    return ClipFacts(video=None, audio=audio)


def test_the_audio_check_allows_one_audio_frame_and_no_more() -> None:
    assert audio_mismatches(2.0, 2.0, _facts(0.0, 100)) == []
    assert audio_mismatches(2.0, 2.0, _facts(0.0, 101)) == []  # one 20 ms frame long
    assert audio_mismatches(2.0, 2.0, _facts(0.0, 99)) == []
    long = audio_mismatches(2.0, 2.0, _facts(0.0, 102))
    assert long and "audio duration: expected 2.000s (planned" in long[0] and "2.040s" in long[0]
    late = audio_mismatches(2.0, 2.0, _facts(0.05, 100))
    assert late == ["audio start: expected 0.000s (within 0.022s), found 0.050s"]
    assert audio_mismatches(2.0, 2.0, ClipFacts(None, None)) == [
        "audio stream: expected one, found none"
    ]
    with_video = ClipFacts(video=_facts(0.0, 100).audio, audio=_facts(0.0, 100).audio)
    assert audio_mismatches(2.0, 2.0, with_video) == ["video stream: expected none, found one"]


def test_an_audio_clip_that_fails_its_check_is_a_permanent_clip_mismatch(
    sources, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import videojobs_worker.audio as audio

    info = probe_audio(sources["mp3"])
    assert info is not None
    seg = _segments()[0]
    real = audio.verify_audio_clip
    monkeypatch.setattr(
        audio, "verify_audio_clip", lambda p, planned, aimed: real(p, planned + 1, aimed)
    )
    dest = tmp_path / "x.mp3"
    with pytest.raises(WorkerError) as caught:
        cut_audio_clip(info, seg, "mp3", "smart", Quality(), dest)
    assert caught.value.reason == "ClipMismatch" and caught.value.exit_code.permanent
    assert (
        "clip 1 (x.mp3)" in caught.value.message
        and "expected 4.333s (planned" in caught.value.message
    )
    assert not dest.exists()
