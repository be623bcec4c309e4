"""HEVC and 10-bit H.264 smart cuts, checked frame by frame (issue 23: the fast path for phones,
cameras and TV).

Every source is a frame-numbered master (``make_video(numbered=True)``), cut into three clips
that start and end between keyframes; each clip must hold exactly the planned frames (read
back one by one, as stored: before any display rotation), decode without a single error, keep
the source's bit depth, profile and rotation, and say in its note that the fast path was taken.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import pytest

from tests.mediakit import ffprobe_json, frame_numbers, make_video, run_ffmpeg, source_times
from videojobs.models import PlannedSegment, Quality
from videojobs_worker import hevcbits
from videojobs_worker.cut import CutOutcome, CutRequest, cut_clip
from videojobs_worker.cut.hevcsmart import source_hvcc
from videojobs_worker.probe import first_video_packet, probe

pytestmark = pytest.mark.media

TOL = 0.0005
GOP = 45
SIZE = (192, 108)  # the frame number needs 192 pixels; 108 rows: a conformance window in HEVC
SEGMENTS = [(0.37, 1.61), (1.37, 4.61), (2.9, 5.95)]
"""Three clips, none starting or ending on a keyframe (every 1.5 s)."""
HEVC = {"vcodec": "libx265", "preset": "ultrafast"}
SOURCES = {
    # name: (suffix, make_video options, expected pix_fmt, expected profile)
    "hevc_mp4": ("mp4", HEVC, "yuv420p", "Main"),
    "hevc10_mov_rotated": (
        "mov",
        {**HEVC, "pix_fmt": "yuv420p10le", "rotation": 90},
        "yuv420p10le",
        "Main 10",
    ),
    "hevc_mkv": ("mkv", HEVC, "yuv420p", "Main"),
    "h264_10bit": (
        "mp4",
        {"preset": "veryfast", "pix_fmt": "yuv420p10le"},
        "yuv420p10le",
        "High 10",
    ),
}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("hevc")

    @functools.cache
    def build(name: str) -> Path:
        suffix, options, _, _ = SOURCES[name]
        return make_video(
            root / f"{name}.{suffix}", duration=6, size=SIZE, gop=GOP, numbered=True, **options
        )

    return build


def planned(src: Path, start: float, end: float) -> list[int]:
    """The frame numbers a clip of [start, end) holds: the indices of the source frames shown
    in it (a Matroska source's frames are shown from its first timestamp, 21 ms with x265)."""
    return [i for i, t in enumerate(source_times(src)) if start - TOL <= t < end - TOL]


def cut(src: Path, start: float, end: float, precision: str, dest: Path) -> CutOutcome:
    segment = PlannedSegment(index=1, title="clip", start=start, end=end, stem="clip")
    return cut_clip(CutRequest(src, probe(src), segment, "mp4", precision, Quality(), dest))  # type: ignore[arg-type]


def decode_errors(path: Path) -> str:
    proc = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stderr.strip() if proc.returncode == 0 else f"exit {proc.returncode}"


@pytest.mark.parametrize("name", list(SOURCES))
def test_smart_cut_is_frame_exact_and_fast(name: str, source, tmp_path: Path) -> None:
    src = source(name)
    _, _, pix_fmt, profile = SOURCES[name]
    rotation = probe(src).video.rotation
    for i, (start, end) in enumerate(SEGMENTS):
        outcome = cut(src, start, end, "smart", tmp_path / f"clip{i}.mp4")
        note = outcome.note or ""
        assert outcome.precision_used == "smart", note
        assert note.startswith("smart:"), note
        assert frame_numbers(outcome.path, stored=True) == planned(src, start, end), note
        assert decode_errors(outcome.path) == "", note
        video = probe(outcome.path).video
        assert (video.pix_fmt, video.profile, video.rotation) == (pix_fmt, profile, rotation)
        assert probe(outcome.path).audio is not None
        if video.codec == "hevc":
            assert "x265" in note and "in-band" in note, note
        if name == "hevc_mkv":  # demuxed to an MP4 range copy without re-encoding the middle
            assert "HEVC in Matroska" in note, note


@pytest.mark.parametrize("name", ["hevc10_mov_rotated", "h264_10bit"])
def test_accurate_keeps_10_bit(name: str, source, tmp_path: Path) -> None:
    src = source(name)
    start, end = SEGMENTS[1]
    outcome = cut(src, start, end, "accurate", tmp_path / "clip.mp4")
    video = probe(outcome.path).video
    assert (video.codec, video.pix_fmt, video.profile) == ("h264", "yuv420p10le", "High 10")
    expected = planned(src, start, end)
    if probe(src).video.rotation:  # the pixels are turned upright: count the frames only
        counted = ffprobe_json(outcome.path, "-count_frames", "-select_streams", "v:0")
        assert int(counted["streams"][0]["nb_read_frames"]) == len(expected)
    else:
        assert frame_numbers(outcome.path) == expected


def test_hevc_open_gop_falls_back_to_accurate_and_says_why(tmp_path: Path) -> None:
    src = make_video(
        tmp_path / "open.mp4",
        duration=6,
        size=SIZE,
        gop=GOP,
        numbered=True,
        **HEVC,
        x265_params="open-gop=1",
    )
    start, end = SEGMENTS[1]
    outcome = cut(src, start, end, "smart", tmp_path / "clip.mp4")
    assert outcome.precision_used == "accurate"
    assert "open GOP" in (outcome.note or ""), outcome.note
    assert frame_numbers(outcome.path) == planned(src, start, end)


def test_hevc_copy_keeps_hvc1(source, tmp_path: Path) -> None:
    src = source("hevc_mp4")
    outcome = cut(src, *SEGMENTS[1], "copy", tmp_path / "copy.mp4")
    assert outcome.precision_used == "copy"
    assert source_hvcc(outcome.path)[0] == b"hvc1"  # type: ignore[index]
    assert ffprobe_json(outcome.path)["streams"][0]["codec_tag_string"] == "hvc1"
    assert decode_errors(outcome.path) == ""


def test_hevc_copy_from_mpegts_is_hev1(tmp_path: Path) -> None:
    """MPEG-TS carries HEVC parameter sets in-band in every keyframe's sample: a ``copy`` clip
    of it is ``hev1`` (``hvc1`` forbids them there), and the note says so."""
    src = make_video(tmp_path / "hevc.ts", duration=6, size=SIZE, gop=GOP, numbered=True, **HEVC)
    start, end = SEGMENTS[1]
    outcome = cut(src, start, end, "copy", tmp_path / "copy.mp4")
    assert outcome.precision_used == "copy", outcome.note
    tag = ffprobe_json(outcome.path)["streams"][0]["codec_tag_string"]
    assert tag == "hev1" and source_hvcc(outcome.path)[0] == b"hev1"  # type: ignore[index]
    assert "sample entry is hev1" in (outcome.note or ""), outcome.note
    assert decode_errors(outcome.path) == ""


def test_hevc_headers_parse(source) -> None:
    src = source("hevc10_mov_rotated")
    kind, record = source_hvcc(src)  # type: ignore[misc]
    assert kind == b"hvc1" and record.length_size == 4
    sps = hevcbits.parse_sps_format(record.of_type(hevcbits.NAL_SPS)[0])
    assert (sps.profile_idc, sps.chroma_format_idc, sps.bit_depth_luma) == (2, 1, 10)
    assert (sps.width, sps.height) == (192, 112) and sps.conformance_window == (0, 0, 0, 2)
    units = hevcbits.sample_units(first_video_packet(src), record.length_size)
    assert hevcbits.is_clean_random_access(units)  # x265 closed GOP: IDR
    options = hevcbits.x265_options(b"".join(record.of_type(39)))
    assert options["open-gop"] == "0" and options["keyint"] == str(GOP)


def test_format_differences_name_the_field() -> None:
    base = hevcbits.SpsFormat(0, 1, 0, 60, 1, 192, 112, (0, 0, 0, 2), 8, 8)
    assert hevcbits.format_differences(base, base) == []
    lower = hevcbits.SpsFormat(0, 1, 0, 30, 1, 192, 112, (0, 0, 0, 2), 8, 8)
    assert hevcbits.format_differences(base, lower) == []
    ten = hevcbits.SpsFormat(0, 2, 0, 60, 1, 192, 112, (0, 0, 0, 2), 10, 10)
    found = hevcbits.format_differences(base, ten)
    assert "SPS profile_idc: 1 vs 2" in found and "SPS bit_depth_luma: 8 vs 10" in found
    higher = hevcbits.SpsFormat(0, 1, 0, 93, 1, 192, 112, (0, 0, 0, 2), 8, 8)
    assert hevcbits.format_differences(base, higher) == ["SPS level: 60 vs 93"]


def test_camera_pcm_audio_is_re_encoded_beside_the_fast_path(source, tmp_path: Path) -> None:
    """Cameras write HEVC with LPCM in MOV: the video still takes the fast path, the audio
    (which MP4 cannot carry) is re-encoded as one piece, and the note says so."""
    src = tmp_path / "camera.mov"
    run_ffmpeg(["-i", str(source("hevc_mp4")), "-c:v", "copy", "-c:a", "pcm_s16le"]
               + ["-tag:v", "hvc1", str(src)])  # fmt: skip
    start, end = SEGMENTS[1]
    outcome = cut(src, start, end, "smart", tmp_path / "clip.mp4")
    note = outcome.note or ""
    assert outcome.precision_used == "smart", note
    assert "pcm_s16le audio was re-encoded to aac" in note, note
    assert frame_numbers(outcome.path) == planned(src, start, end)
    streams = {s["codec_type"]: s for s in ffprobe_json(outcome.path)["streams"]}
    assert streams["audio"]["codec_name"] == "aac"
    assert abs(float(streams["audio"]["duration"]) - float(streams["video"]["duration"])) < 0.022


def test_interlaced_source_stays_interlaced(tmp_path: Path) -> None:
    """A field-coded H.264 source (TV): smart steps aside (its head would be progressive),
    accurate encodes the clip interlaced with the source's field order."""
    src = tmp_path / "tv.mp4"
    run_ffmpeg(
        ["-f", "lavfi", "-i", "testsrc2=size=192x108:rate=30:duration=6"]
        + ["-f", "lavfi", "-i", "sine=duration=6", "-c:v", "libx264", "-preset", "veryfast"]
        + ["-flags", "+ildct+ilme", "-x264-params", "interlaced=1:tff=1", "-field_order", "tt"]
        + ["-g", "45", "-c:a", "aac", str(src)]
    )
    start, end = SEGMENTS[1]
    outcome = cut(src, start, end, "smart", tmp_path / "clip.mp4")
    assert outcome.precision_used == "accurate"
    assert "interlaced (field order tt)" in (outcome.note or ""), outcome.note
    video = ffprobe_json(outcome.path, "-select_streams", "v:0")["streams"][0]
    assert video["field_order"] == "tt"
    assert int(ffprobe_json(outcome.path, "-count_frames")["streams"][0]["nb_read_frames"]) == len(
        planned(src, start, end)
    )


HDR10 = (
    "colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:"
    "master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):"
    "max-cll=1000,400"
)


def hdr_side_data(path: Path, frame: int) -> dict[str, dict]:
    """The HDR10 side data (mastering display, content light level) of shown frame ``frame``."""
    data = json_frames(path, frame)
    return {
        item["side_data_type"]: {k: v for k, v in item.items() if k != "side_data_type"}
        for item in data.get("side_data_list") or []
        if item.get("side_data_type") in HDR_TYPES
    }


HDR_TYPES = ("Mastering display metadata", "Content light level metadata")


def json_frames(path: Path, frame: int) -> dict:
    import json

    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", f"%+#{frame + 1}"]
        + ["-show_frames", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)["frames"][frame]


def test_hdr10_side_data_kept_in_the_x265_head(tmp_path: Path) -> None:
    """An HDR10 Main 10 source (PQ, BT.2020, mastering display and content light level SEI):
    the smart clip's re-encoded head reports the same HDR side data and colour description as
    its copied middle and as the source (x265 was given none: the head's frames had no
    mastering display or light level; issue 23)."""
    src = make_video(
        tmp_path / "hdr.mp4", duration=6, size=SIZE, gop=GOP, numbered=True,
        pix_fmt="yuv420p10le", x265_params=HDR10,
        extra=["-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc"],
        **HEVC,
    )  # fmt: skip
    expected = hdr_side_data(src, 0)
    assert set(expected) == set(HDR_TYPES), expected
    start, end = SEGMENTS[1]
    outcome = cut(src, start, end, "smart", tmp_path / "clip.mp4")
    assert outcome.precision_used == "smart", outcome.note
    assert "re-encoded" in (outcome.note or "") and "head frame" in (outcome.note or "")
    assert frame_numbers(outcome.path, stored=True) == planned(src, start, end)
    middle = planned(src, start, end).index(2 * GOP)  # a keyframe of the copied middle (3 s)
    assert hdr_side_data(outcome.path, 0) == expected  # the head
    assert hdr_side_data(outcome.path, middle) == expected  # the middle
    stream = ffprobe_json(outcome.path)["streams"][0]
    colour = (stream["color_primaries"], stream["color_transfer"], stream["color_space"])
    assert colour == ("bt2020", "smpte2084", "bt2020nc"), stream
    assert stream["pix_fmt"] == "yuv420p10le"
