"""Smart cut of HEVC (H.265) sources into MP4: x265 head and tail, stream-copied middle.

Like the H.264 smart cut (:func:`videojobs_worker.cut._run_smart`), the frames from the planned
start to the first clean keyframe (the head) and from the last clean cut point to the planned
end (the tail) are re-encoded, here with x265 in the source's profile (Main or Main 10), bit
depth, chroma format, size and colour description; everything between is copied packet for
packet, and the concat demuxer joins the pieces.

How the pieces' parameter sets fit the copied middle's: x265 always numbers its VPS, SPS and
PPS 0, and renumbering them would mean rewriting every slice header. Instead every piece starts
a coded video sequence of its own on an IDR (or BLA) picture and carries its own VPS/SPS/PPS
in-band in that first sample (x265 ``repeat-headers``; the copied middle gets the source's from
``hvcC`` by ``hevc_mp4toannexb``). A new SPS may take over an id only at such a start
(H.265 7.4.2.4.2), which is where each one comes. The clip's sample entry is then ``hev1``
(ISO/IEC 14496-15 8.4.1: parameter sets may be in the samples), not the ``hvc1`` of phones and
cameras, whose ``hvcC`` must hold every parameter set; the note says so. Before joining, the
pieces' SPS is checked to describe the same picture format as the source's
(:func:`videojobs_worker.hevcbits.format_differences`), so a decoder never sees the format change.

The middle must start on an IDR or BLA picture without leading pictures: a CRA starts a coded
video sequence only at the start of a stream, so one after the head would continue the head's
picture order count (an open-GOP source falls back to ``accurate``, and the note says why).
"""

from __future__ import annotations

import functools
from pathlib import Path

from videojobs_worker import hevcbits
from videojobs_worker.cut.args import COPYABLE_AUDIO, audio_encoder_args, colour_args
from videojobs_worker.cut.frames import Layout, has_leading_pictures, layout_from_keyframe
from videojobs_worker.cut.h264smart import FAST_PIECES_SECONDS
from videojobs_worker.cut.join import (
    Stages,
    audio_frames_args,
    concat_quote,
    cpus,
    run_pieces,
)
from videojobs_worker.cut.request import CutJob, SmartResult
from videojobs_worker.ffmpeg import ffprobe, run_ffmpeg, seconds_arg
from videojobs_worker.mp4boxes import read_moov
from videojobs_worker.mp4edit import read_sample_config
from videojobs_worker.probe import MediaInfo, Packet, first_video_packet
from videojobs_worker.streams import join_stream_args

HEVC_PIX_FMTS = {"yuv420p": "main", "yuvj420p": "main", "yuv420p10le": "main10"}
"""Source pixel formats the HEVC smart cut handles, with the x265 profile of their pieces."""
HEVC_CRF_OFFSET = 4
"""x265's CRF scale sits above x264's for the same quality: the pieces use ``crf + 4``."""
# x264 presets (the job's quality) mapped to x265 presets of about the same cost per frame:
# x265 is several times slower than x264 at the same preset name.
_X265_PRESET = {
    "ultrafast": "ultrafast",
    "superfast": "ultrafast",
    "veryfast": "ultrafast",
    "faster": "superfast",
    "fast": "veryfast",
    "medium": "faster",
    "slow": "fast",
}
_HVC_ENTRIES = (b"hvc1", b"hev1")
_FEW_FRAMES = 8


def hevc_fallback_reason(info: MediaInfo, fmt: str) -> str | None:
    """Why an HEVC source cannot be smart-cut into ``fmt``, or None (pure)."""
    video = info.video
    if fmt != "mp4":
        return "WebM cannot carry HEVC, so the clip is re-encoded"
    if video.pix_fmt not in HEVC_PIX_FMTS:
        return (
            f"the source pixel format is {video.pix_fmt} (HEVC smart cutting: "
            f"{', '.join(sorted(HEVC_PIX_FMTS))} only)"
        )
    if video.index != 0:
        return "the video is not the source's first stream (the concat demuxer needs that)"
    return None


@functools.lru_cache(maxsize=16)
def _source_hvcc(path: Path, size: int, mtime_ns: int) -> tuple[bytes, hevcbits.HvcC] | str:
    del size, mtime_ns  # cache key only
    moov = read_moov(path)
    if moov is None:
        return "the source is not an MP4 file, so its HEVC configuration (hvcC) cannot be read"
    try:
        kind, payload = read_sample_config(moov, _HVC_ENTRIES, b"hvcC")
        return kind, hevcbits.parse_hvcc(payload)
    except hevcbits.BitstreamError as exc:
        return f"its hvcC cannot be read ({exc})"


def source_hvcc(path: Path) -> tuple[bytes, hevcbits.HvcC] | str:
    """The sample entry type and ``hvcC`` of an MP4/MOV file (cached per file version), or why
    there is none."""
    stat = path.stat()
    return _source_hvcc(path, stat.st_size, stat.st_mtime_ns)


def _sps_format(path: Path) -> hevcbits.SpsFormat | str:
    found = source_hvcc(path)
    if isinstance(found, str):
        return found
    sps = found[1].of_type(hevcbits.NAL_SPS)
    if not sps:
        return "its hvcC holds no SPS"
    try:
        return hevcbits.parse_sps_format(sps[0])
    except hevcbits.BitstreamError as exc:
        return f"its SPS cannot be parsed ({exc})"


def _clean_keyframe(info: MediaInfo, packets: list[Packet], index: int, length: int) -> bool:
    """True when the keyframe ``packets[index]`` is an IDR/BLA picture without leading
    pictures (read from the source: one ffmpeg run)."""
    if has_leading_pictures(packets, index):
        return False
    data = first_video_packet(info.path, float(packets[index].pts * info.video.time_base))
    try:
        return hevcbits.is_clean_random_access(hevcbits.sample_units(data, length))
    except hevcbits.BitstreamError:
        return False


def _layout(info: MediaInfo, job: CutJob, length: int) -> Layout | str:
    """Split the clip into head, middle and tail, or say why it cannot be."""
    frames = job.frames
    packets = list(frames.packets)
    keys = [i for i, p in enumerate(packets) if p.key and frames.first <= p.pts <= frames.last]
    if not keys:
        return "no keyframe inside the segment, so nothing can be stream-copied"
    key_index = next((i for i in keys if _clean_keyframe(info, packets, i, length)), None)
    if key_index is None:
        return (
            "open GOP: no keyframe inside the segment is an IDR picture without leading "
            "pictures (a CRA would continue the head's picture order)"
        )
    return layout_from_keyframe(packets, key_index, frames)


@functools.lru_cache(maxsize=16)
def _hdr_params(path: Path, size: int, mtime_ns: int) -> tuple[str, ...]:
    del size, mtime_ns  # cache key only
    rows = ffprobe(
        path, select_streams="v:0", read_intervals="%+#1", show_frames=None, show_streams=None
    )
    side: list[dict] = []
    for frame in rows.get("frames") or []:
        side += frame.get("side_data_list") or []
    for stream in rows.get("streams") or []:  # container-level (Matroska, MP4 mdcv/clli)
        side += stream.get("side_data_list") or []
    found: dict[str, str] = {}
    for param in hevcbits.x265_hdr_params(side):
        found.setdefault(param.split("=", 1)[0], param)  # the frame's first
    return tuple(found.values())


def hdr_params(path: Path) -> list[str]:
    """x265 ``master-display``/``max-cll`` repeating the HDR10 side data of the source's first
    frame (its SEI) or stream (cached per file version; empty for SDR)."""
    stat = path.stat()
    return list(_hdr_params(path, stat.st_size, stat.st_mtime_ns))


def _reorder_params(delay: int) -> str:
    """x265 options giving the source's frame reordering delay (the pieces' decode times then
    run on from the copied middle's): 0 without B-frames, 1 with, 2 with a B-pyramid."""
    if delay <= 0:
        return "bframes=0"
    if delay == 1:
        return "bframes=3:b-pyramid=0"
    return "bframes=3:b-pyramid=1"


def x265_piece_args(
    info: MediaInfo, job: CutJob, start: int, count: int, dest: Path, fast: bool
) -> list[str]:
    """One ffmpeg run re-encoding ``count`` frames from source pts ``start`` with x265 into an
    MP4 piece whose first sample carries its VPS/SPS/PPS (source timestamps kept)."""
    tb = info.video.time_base
    threads = job.threads if job.threads > 0 else cpus()
    args = ["-threads", str(1 if count <= _FEW_FRAMES else threads)]
    span = count * info.video.frame_duration
    if info.vfr:
        later = sorted(p.pts for p in job.frames.packets if p.pts >= start)
        if later:
            span = float((later[min(count, len(later) - 1)] - start) * tb)
    args += ["-seek_timestamp", "1", "-ss", seconds_arg(float(start * tb))]
    args += ["-t", seconds_arg(span + 0.5)]
    if info.video.rotation:  # stored pixels, like the copied middle; the clip gets the tag
        args += ["-noautorotate"]
    args += ["-i", str(info.path), "-map", f"0:{info.video.index}", "-an", "-sn", "-dn"]
    args += ["-fps_mode", "passthrough", "-enc_time_base:v", "-1", "-frames:v", str(count)]
    pix_fmt = info.video.pix_fmt or "yuv420p"
    preset = "ultrafast" if fast else _X265_PRESET.get(job.quality.preset, "ultrafast")
    crf = (job.quality.crf or 20) + HEVC_CRF_OFFSET
    args += ["-c:v", "libx265", "-preset", preset, "-crf", str(crf)]
    args += ["-pix_fmt", pix_fmt, "-profile:v", HEVC_PIX_FMTS[pix_fmt], *colour_args(info)]
    params = ["repeat-headers=1", "log-level=error", "info=0", "open-gop=0"]
    params += [_reorder_params(info.video.has_b_frames), f"keyint={count + 1}", "scenecut=0"]
    params += [f"rc-lookahead={max(4, min(count, 20))}", f"pools={threads}"]
    if count <= _FEW_FRAMES:
        params.append("frame-threads=1")
    params += hdr_params(info.path)  # HDR10 SEI like the copied middle's (issue 23)
    args += ["-x265-params", ":".join(params)]
    args += ["-video_track_timescale", str(tb.denominator), "-map_metadata", "-1"]
    return [*args, "-f", "mp4", str(dest)]


def _middle_args(info: MediaInfo, layout: Layout, dest: Path, in_band: bool) -> list[str]:
    """Stream-copy the middle from its keyframe; ``in_band`` puts the source's parameter sets
    into its first sample (and every later IRAP one)."""
    tb = info.video.time_base
    args = ["-seek_timestamp", "1", "-ss", seconds_arg(float(layout.keyframe * tb))]
    args += ["-i", str(info.path), "-map", f"0:{info.video.index}", "-an", "-sn", "-dn"]
    args += ["-c:v", "copy", "-frames:v", str(layout.mid_count)]
    if in_band:
        args += ["-bsf:v", "hevc_mp4toannexb"]
    args += ["-video_track_timescale", str(tb.denominator), "-map_metadata", "-1"]
    return [*args, "-f", "mp4", str(dest)]


def _piece_problems(pieces: list[Path], source: hevcbits.SpsFormat) -> str:
    """Why the x265 pieces cannot be joined to the source (empty: they can)."""
    for piece in pieces:
        found = _sps_format(piece)
        if isinstance(found, str):
            return f"the re-encoded {piece.stem}: {found}"
        diff = hevcbits.format_differences(source, found)
        if diff:
            return f"the re-encoded {piece.stem}'s SPS differs: {'; '.join(diff[:3])}"
    return ""


def _encode_pieces(
    job: CutJob, layout: Layout, fast: bool, stages: Stages
) -> list[tuple[Path, float]]:
    """Encode head and tail (side by side): (piece, duration in the clip) in clip order."""
    info, frames, work = job.info, job.frames, job.work
    tb = info.video.time_base
    runs: list[list[str]] = []
    pieces: list[tuple[Path, float]] = []
    if layout.head_count:
        head = work / "head.mp4"
        runs.append(x265_piece_args(info, job, frames.first, layout.head_count, head, fast))
        pieces.append((head, float((layout.keyframe - frames.first) * tb)))
    if layout.tail_count:
        tail = work / "tail.mp4"
        runs.append(x265_piece_args(info, job, layout.mid_end, layout.tail_count, tail, fast))
        pieces.append((tail, float((frames.end - layout.mid_end) * tb)))
    if runs:
        head_s = float((layout.keyframe - frames.first) * tb) if layout.head_count else None
        run_pieces(runs, duration=head_s, on_progress=stages.callback(0), stop=job.stop)
    return pieces


def _join_args(job: CutJob, listing: Path, tag: str) -> tuple[list[str], str]:
    """The final run: the concat listing's video, the source's audio tracks and subtitles (see
    :mod:`videojobs_worker.streams`), the source's rotation; and the note about the streams."""
    info, frames = job.info, job.frames
    args = ["-f", "concat", "-safe", "0", "-i", str(listing)]
    outputs: list[str] = []
    note = ""
    if info.audio is not None:
        args += ["-seek_timestamp", "1", "-ss", seconds_arg(frames.start_s), "-i", str(info.path)]
        outputs += ["-map", f"1:{info.audio.index}"]
        if info.audio.codec in COPYABLE_AUDIO["mp4"]:
            outputs += ["-c:a", "copy", "-copypriorss:a", "0"]
            outputs += [
                a.replace("-frames:a", "-frames:a:0") for a in audio_frames_args(info, frames)
            ]
        else:  # a camera's PCM: one piece from the source, re-encoded, trimmed by its times
            outputs += [*audio_encoder_args("mp4", job.quality), "-c:a:0", "aac"]
            outputs += ["-filter:a:0", f"atrim=end={seconds_arg(frames.duration_s)}"]
            note = f"the {info.audio.codec} audio was re-encoded to aac (MP4 cannot carry it)"
    main = info.audio.index if info.audio is not None else None
    more_inputs, more_outputs, streams_note = join_stream_args(
        info.path,
        main,
        frames.start_s,
        frames.duration_s,
        "mp4",
        job.work,
        next_input=2 if info.audio is not None else 1,
    )
    args += [*more_inputs, "-map", "0:v:0", "-c:v", "copy", "-tag:v", tag]
    args += ["-video_track_timescale", str(info.video.time_base.denominator)]
    args += [*outputs, *more_outputs, "-map_metadata", "-1", "-map_chapters", "-1"]
    if info.video.rotation:
        args += ["-metadata:s:v:0", f"rotate={info.video.rotation}"]
    note = "; ".join(n for n in (note, streams_note) if n)
    return [*args, "-f", "mp4", "-movflags", "+faststart", str(job.dest)], note


def run_smart_hevc(job: CutJob) -> SmartResult:
    """Head + copied middle + tail for an HEVC source (see the module docstring); a string says
    why not."""
    info, frames, work = job.info, job.frames, job.work
    tb = info.video.time_base
    found = source_hvcc(info.path)
    if isinstance(found, str):
        return found
    source_format = _sps_format(info.path)
    if isinstance(source_format, str):
        return f"the source: {source_format}"
    layout = _layout(info, job, found[1].length_size)
    if isinstance(layout, str):
        return layout
    re_encoded = layout.head_count + layout.tail_count
    stages = Stages([re_encoded * 1.0, layout.mid_count * 0.03], job.on_progress)
    fast = re_encoded * info.video.frame_duration > FAST_PIECES_SECONDS
    pieces = _encode_pieces(job, layout, fast, stages)
    problems = _piece_problems([p for p, _ in pieces], source_format)
    if problems:
        return problems
    middle = work / "middle.mp4"
    run_ffmpeg(_middle_args(info, layout, middle, in_band=bool(pieces)), stop=job.stop)
    entries = []
    if layout.head_count:
        entries.append((pieces[0][0], pieces[0][1]))
    entries.append((middle, float((layout.mid_end - layout.keyframe) * tb)))
    if layout.tail_count:
        entries.append(pieces[-1])
    text = "".join(
        f"file '{concat_quote(path.resolve())}'\nduration {seconds_arg(seconds)}\n"
        for path, seconds in entries
    )
    listing = work / "pieces.ffconcat"
    listing.write_text("ffconcat version 1.0\n" + text, encoding="utf-8")
    tag = "hev1" if pieces else found[0].decode()
    join, streams_note = _join_args(job, listing, tag)
    run_ffmpeg(join, duration=frames.duration_s, on_progress=stages.callback(1), stop=job.stop)
    if layout.head_count:
        job.joins.append(float((layout.keyframe - frames.first) * tb))
    if layout.tail_count:
        job.joins.append(float((layout.mid_end - frames.first) * tb))
    note = _note(info, layout, frames.count, fast, tag)
    return "smart", 0.0, f"{note}; {streams_note}" if streams_note else note


def _note(info: MediaInfo, layout: Layout, count: int, fast: bool, tag: str) -> str:
    note = (
        f"smart: {layout.reencoded()} with x265, stream-copied {layout.mid_count} "
        f"(of {count} frames) of the HEVC source"
    )
    if layout.head_count or layout.tail_count:
        pix_fmt = info.video.pix_fmt or "yuv420p"
        note += (
            f"; re-encoded pieces: {HEVC_PIX_FMTS[pix_fmt].replace('main', 'Main ').strip()}"
            f" {pix_fmt}, each with its own VPS/SPS/PPS in-band, so the clip's sample entry is "
            f"{tag} (not hvc1)"
        )
        if fast:
            note += f", x265 ultrafast (re-encoded frames span more than {FAST_PIECES_SECONDS:g} s)"
    if info.vfr:
        note += "; variable frame rate kept (source timestamps)"
    return note
