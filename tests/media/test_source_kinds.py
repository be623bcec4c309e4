"""Every kind of source people really have, cut in every precision: each clip decodes with zero
errors and holds exactly the planned frames; the note says which path was taken and why.

Sources are generated small and short (a few seconds at 320x240, 1080p60 for 2.5 s); each is
made once per session, only when a test needs it.
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.media.conftest import best_match, probe_streams, tiny_frames
from tests.mediakit import SOURCE_KINDS, make_video, source_times
from videojobs.models import PlannedSegment, Quality
from videojobs_worker import h264bits as hb
from videojobs_worker.cut import CutOutcome, CutRequest, cut_clip
from videojobs_worker.mp4boxes import read_moov
from videojobs_worker.mp4edit import read_avcc
from videojobs_worker.probe import probe

pytestmark = pytest.mark.media

TOL = 0.0005
OWN_PARAMETER_SETS = {"sei_stripped", "x264_medium", "gop10s"}
"""H.264 kinds whose head/tail get their own parameter sets: no x264 SEI, x264 settings
slower than the requested preset (veryfast), or a head longer than a second (x264 ultrafast)."""


@dataclass(frozen=True)
class Kind:
    name: str
    suffix: str
    options: dict
    segment: tuple[float, float]
    outputs: tuple[str, ...] = ("mp4",)
    fast: tuple[str, ...] = ()
    """Output formats where smart must take its fast path."""
    fallback: str = ""
    """Substring of the note when smart falls back (mp4 output)."""


def _kind(name: str, segment: tuple[float, float], **extra) -> Kind:
    options = {**SOURCE_KINDS[name], **extra.pop("options", {})}
    return Kind(name, extra.pop("suffix", "mp4"), options, segment, **extra)


KINDS = {
    k.name: k
    for k in [
        _kind("x264_medium", (1.37, 4.61), fast=("mp4",)),
        _kind("x264_veryfast", (1.37, 4.61), fast=("mp4",)),
        _kind("open_gop", (1.37, 4.61), fallback="open GOP"),
        _kind("sei_stripped", (1.37, 4.61), fast=("mp4",)),
        _kind(
            "vp9_webm", (1.37, 4.61), suffix="webm", outputs=("webm", "mp4"), fast=("webm", "mp4")
        ),
        _kind("av1", (1.37, 4.61), outputs=("mp4", "webm"), fast=("mp4", "webm")),
        _kind("hd1080p60", (0.41, 2.13), options={"duration": 2.5, "gop": 60}, fast=("mp4",)),
        _kind(
            "gop10s",
            (8.2, 11.3),
            options={"size": (160, 120), "duration": 12, "gop": 300},
            fast=("mp4",),
        ),
        _kind("vfr", (1.37, 4.61), fast=("mp4",)),
        _kind("rotated", (1.37, 4.61), fast=("mp4",)),
    ]
}


@pytest.fixture(scope="session")
def make_source(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("kinds")

    @functools.cache
    def build(name: str) -> Path:
        kind = KINDS[name]
        options = {"duration": 6, "gop": 45, **kind.options}
        return make_video(root / f"{name}.{kind.suffix}", **options)

    return build


def planned_indices(src: Path, start: float, end: float) -> tuple[int, int]:
    """Index of the first planned source frame and the number of planned frames."""
    times = source_times(src)
    inside = [i for i, t in enumerate(times) if start - TOL <= t < end - TOL]
    return inside[0], len(inside)


def decode_check(path: Path) -> tuple[int, str]:
    """Decode every stream with errors fatal (``-xerror``): return code and error output."""
    proc = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode, proc.stderr.strip()


def inband_parameter_set_bytes(path: Path) -> int:
    """Bytes of SPS/PPS NAL units inside the video samples (not in ``avcC``)."""
    out = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v", "-c", "copy"]
        + ["-bsf:v", "filter_units=pass_types=7-8", "-f", "rawvideo", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return len(out)


def cut(src: Path, start: float, end: float, fmt: str, precision: str, dest: Path) -> CutOutcome:
    segment = PlannedSegment(index=1, title="clip", start=start, end=end, stem="clip")
    return cut_clip(CutRequest(src, probe(src), segment, fmt, precision, Quality(), dest))


def assert_clean(path: Path) -> dict:
    code, errors = decode_check(path)
    assert (code, errors) == (0, ""), f"{path.name} decodes with errors: {errors[:500]}"
    streams = probe_streams(path)
    video = streams["video"]
    assert int(video["nb_read_packets"]) == int(video["nb_read_frames"]), "hidden frames"
    return streams


@pytest.mark.parametrize("name", list(KINDS))
def test_smart_and_accurate_clips_are_clean_and_exact(
    name: str, make_source, tmp_path: Path
) -> None:
    kind = KINDS[name]
    src = make_source(name)
    start, end = kind.segment
    first, count = planned_indices(src, start, end)
    source_frames = None if name == "vfr" else tiny_frames(src)  # both shown upright
    for fmt in kind.outputs:
        for precision in ("smart", "accurate"):
            outcome = cut(src, start, end, fmt, precision, tmp_path / f"{precision}.{fmt}")
            streams = assert_clean(outcome.path)
            frames = int(streams["video"]["nb_read_frames"])
            if name == "vfr" and precision == "accurate":  # re-encoded at a constant 30 fps
                assert frames == round((end - start) * 30), outcome.note
            elif name == "vfr":  # smart keeps the source's frames at the source's times
                planned = source_times(src)[first : first + count]
                got = source_times(outcome.path)
                assert len(got) == count, outcome.note
                offset = got[0] - planned[0]
                assert max(abs(g - p - offset) for g, p in zip(got, planned, strict=True)) < TOL, (
                    got
                )
                assert "variable frame rate kept" in (outcome.note or "")
            else:
                assert frames == count, f"{precision} {fmt}: {outcome.note}"
            if source_frames is not None:
                shown = tiny_frames(outcome.path)
                assert best_match(shown[0], source_frames) == first
                assert best_match(shown[-1], source_frames) == first + count - 1
            if precision == "smart":
                note = outcome.note or ""
                if fmt in kind.fast:
                    assert outcome.precision_used == "smart", note
                    assert note.startswith("smart:"), note
                    own = name in OWN_PARAMETER_SETS
                    assert ("own parameter sets" in note) == own, note
                    if name == "rotated":  # stored pixels, the source's display rotation
                        assert probe(outcome.path).video.rotation == probe(src).video.rotation
                    if streams["video"]["codec_name"] == "h264":
                        # Conformant avc1: every SPS/PPS in avcC, none in-band.
                        assert inband_parameter_set_bytes(outcome.path) == 0
                        record = hb.parse_avcc(read_avcc(read_moov(outcome.path)))
                        assert len(record.sps) == (2 if own else 1)
                else:
                    assert outcome.precision_used == "accurate"
                    assert note.startswith("smart fell back to accurate: "), note
                    if fmt == "mp4" and kind.fallback:
                        assert kind.fallback in note, note


@pytest.mark.parametrize("name", list(KINDS))
def test_copy_clips_are_clean(name: str, make_source, tmp_path: Path) -> None:
    kind = KINDS[name]
    src = make_source(name)
    start, end = kind.segment
    for fmt in kind.outputs:
        outcome = cut(src, start, end, fmt, "copy", tmp_path / f"copy.{fmt}")
        assert_clean(outcome.path)
        assert outcome.note
        if outcome.precision_used == "copy":
            assert outcome.start_offset <= 0
            audio = probe_streams(outcome.path)["audio"]["codec_name"]
            source_audio = probe_streams(src)["audio"]["codec_name"]
            if audio != source_audio:  # never silently: the note says the audio was re-encoded
                assert f"{source_audio} audio was re-encoded to {audio}" in outcome.note
        else:  # the codec cannot go into this container: said so, never silently
            assert "cannot be copied" in outcome.note


def test_idr_detection_in_python_matches_ffmpeg(make_source) -> None:
    from videojobs_worker.probe import h264_is_idr, video_packets

    for name, expected in (("open_gop", [True, False, False]), ("x264_veryfast", [True] * 3)):
        src = make_source(name)
        keys = [p for p in video_packets(src, 0.0, 4.6) if p.key][:3]
        tb = probe(src).video.time_base
        from_table = [h264_is_idr(src, float(p.pts * tb), p.dts) for p in keys]
        from_ffmpeg = [h264_is_idr(src, float(p.pts * tb)) for p in keys]
        assert from_table == from_ffmpeg == expected, name
