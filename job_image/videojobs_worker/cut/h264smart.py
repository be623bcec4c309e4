"""The H.264 smart cut: re-encoded head and tail around a stream-copied middle, joined by the
concat demuxer (see :func:`run_smart`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from videojobs.models import Quality
from videojobs_worker.cut.args import COPYABLE_AUDIO, container_args, video_encoder_args
from videojobs_worker.cut.frames import Layout, has_leading_pictures, layout_from_keyframe
from videojobs_worker.cut.join import (
    Stages,
    audio_frames_args,
    concat_quote,
    cpus,
    floor_us,
    run_pieces,
)
from videojobs_worker.cut.paramsets import (
    piece_problems,
    rewrite_parameter_sets,
    source_avcc,
    source_headers,
    unused_parameter_set_id,
)
from videojobs_worker.cut.request import CutJob, Format, SmartResult
from videojobs_worker.cut.x264 import (
    reorder_params,
    same_ids_affordable,
    x264_match_reason,
    x264_params_like,
)
from videojobs_worker.ffmpeg import run_ffmpeg, seconds_arg
from videojobs_worker.h264bits import AvcC, BitstreamError, ParameterSets, parse_parameter_sets
from videojobs_worker.probe import MediaInfo, Packet, h264_is_idr
from videojobs_worker.streams import describe, extra_stream_plan, join_stream_args, source_streams

SMART_PIX_FMTS = {"yuv420p", "yuvj420p", "yuv420p10le"}


_FEW_FRAMES = 8


_BIG_FRAME = 1280 * 720
"""Frames larger than 720p get fewer encoder threads and a shorter lookahead (peak RSS)."""


FAST_PIECES_SECONDS = 1.0
FAST_PIECES_PRESET = "ultrafast"
"""When the H.264 frames a smart cut re-encodes span more than this (a long GOP puts seconds
of frames before the first copyable IDR), they are encoded with this preset under their own
parameter sets: that encode is most of the cut's cost, and ultrafast is about twice as fast as
veryfast at the same CRF (larger, not worse)."""


PREFER_SAME_IDS = True
"""For x264-made sources, first try re-encoding with the source's own settings and ids (when
those are not slower than the requested preset, see :func:`same_ids_affordable`)."""


def fallback_reason(info: MediaInfo, fmt: Format) -> str | None:
    """Why smart cannot be used for this source/format, or None."""
    video = info.video
    if fmt != "mp4":
        return "smart cutting joins H.264 pieces; WebM output is always re-encoded"
    if video.codec != "h264":
        return f"the source video is {video.codec}, not H.264"
    if video.pix_fmt not in SMART_PIX_FMTS:
        return f"the source pixel format is {video.pix_fmt}, not yuv420p or yuv420p10le"
    if video.index != 0:
        return "the video is not the source's first stream (the concat demuxer needs that)"
    if info.audio is not None and info.audio.codec not in COPYABLE_AUDIO["mp4"]:
        return f"the source audio is {info.audio.codec}, which MP4 cannot carry as it is"
    return None


def smart_encode_args(
    info: MediaInfo,
    pieces: Sequence[tuple[int, int, Path]],
    options: dict[str, str] | None,
    quality: Quality,
    threads: int,
    *,
    chroma_qp_offset: int | None = None,
    sps_id: int | None = None,
    packets: Sequence[Packet] = (),
) -> list[str]:
    """One ffmpeg run re-encoding each ``(start pts, frame count, dest)`` piece (the head and/or
    the tail of a smart cut; several pieces: one process, encoded side by side).

    With ``sps_id`` the pieces are encoded with ``quality``'s settings under that (unused)
    SPS/PPS id, in the source's profile and level; otherwise with the source's x264 ``options``
    so that the parameter sets come out the same as the source's.
    """
    tb = info.video.time_base
    args: list[str] = []
    for start, count, _ in pieces:
        args += _piece_input_args(info, start, count, threads, packets)
    profile = (info.video.profile or "").lower().replace("constrained ", "")
    if sps_id is not None or not options:
        encoder = video_encoder_args("mp4", quality, threads)
        params = f"sps-id={sps_id or 0}"
        if info.video.level:
            params += f":level={info.video.level / 10:.1f}"
        params += reorder_params(info.video.has_b_frames)
    else:
        crf = options.get("crf")
        encoder = video_encoder_args("mp4", quality, threads, crf=int(float(crf)) if crf else None)
        params = x264_params_like(options, info.video.level, chroma_qp_offset)
    if profile in ("baseline", "main", "high"):
        encoder += ["-profile:v", profile]
    elif profile == "high 10":  # 10-bit pieces in the source's profile
        encoder += ["-profile:v", "high10", "-pix_fmt", "yuv420p10le"]
    big = info.video.width * info.video.height > _BIG_FRAME
    if big and threads <= 0:
        # x264's automatic count is 1.5 threads per CPU, each with frames in flight: at 1080p
        # the two encoders of one run peaked near 400 MiB.
        encoder += ["-threads", str(max(1, cpus()))]
    for i, (_, count, dest) in enumerate(pieces):
        # The lookahead never needs more frames than the piece has (memory at 1080p); it
        # changes neither SPS nor PPS.
        lookahead = f"rc-lookahead={max(1, min(count, 5 if big else 40))}"
        if big:
            lookahead += ":sync-lookahead=0"
        piece_params = f"{params}:{lookahead}" if params else lookahead
        args += ["-map", f"{i}:{info.video.index}", "-an", "-sn", "-dn"]
        # Source timestamps go through unchanged (a variable frame rate stays as it is).
        args += ["-fps_mode", "passthrough", "-enc_time_base:v", "-1"]
        args += ["-frames:v", str(count), *encoder, "-x264-params", piece_params]
        if big and count <= _FEW_FRAMES:
            args += ["-threads", "1"]
        args += ["-video_track_timescale", str(tb.denominator), "-map_metadata", "-1"]
        args += ["-f", "mp4", str(dest)]
    return args


def _piece_input_args(
    info: MediaInfo, start: int, count: int, threads: int, packets: Sequence[Packet]
) -> list[str]:
    """Input options reading ``count`` frames from pts ``start`` for one re-encoded piece."""
    tb = info.video.time_base
    args: list[str] = []
    frame = info.video.frame_duration
    # With threads=0, ffmpeg would give each H.264 decoder one frame thread more than there are
    # CPUs; here the decoders share the CPUs with x264, and one thread per CPU (what the worker
    # passes when it cuts one segment at a time) is faster on benchmarks/bench_cutting.py.
    decoder_threads = threads if threads > 0 else cpus()
    # A tail of a few frames gains nothing from frame threads, each holding a picture.
    piece_threads = 1 if count <= _FEW_FRAMES else decoder_threads
    if piece_threads > 0:
        args += ["-threads", str(piece_threads)]
    # The input-side -t lets ffmpeg stop reading each input after its piece (with a margin;
    # -frames:v makes the count exact): without it, the finished input is decoded to EOF.
    span = count * frame
    if info.vfr:  # frames may be farther apart than the nominal rate says
        later = sorted(p.pts for p in packets if p.pts >= start) if packets else []
        if later:
            span = float((later[min(count, len(later) - 1)] - start) * tb)
    args += [
        "-seek_timestamp",
        "1",
        "-ss",
        seconds_arg(float(start * tb)),
        "-t",
        seconds_arg(span + 0.5),
    ]
    if info.video.rotation:
        # Keep the pixels as stored, like the copied middle; the clip gets the rotation tag.
        args += ["-noautorotate"]
    return [*args, "-i", str(info.path)]


@dataclass(frozen=True)
class _Source:
    """The source's H.264 configuration the pieces must fit."""

    avcc: AvcC
    sets: ParameterSets
    options: dict[str, str]
    """Its x264 options (empty when not made by x264)."""


@dataclass(frozen=True)
class _Encoding:
    """How the head and tail are re-encoded."""

    pieces: list[tuple[int, int, Path]]
    """``(start pts, frame count, dest)`` of the head and/or tail (empty: nothing to encode)."""
    same_ids: bool
    """Try the source's x264 settings and parameter-set ids first."""
    fast: bool
    """The pieces span more than ``FAST_PIECES_SECONDS``: encoded with ``FAST_PIECES_PRESET``."""
    seconds: float
    """Nominal duration of the re-encoded frames."""
    quality: Quality
    """Encoder settings for pieces under their own ids."""
    new_id: int | None
    """An SPS/PPS id the source does not use (None: all taken)."""


def run_smart(job: CutJob) -> SmartResult:
    """Head + copied middle + tail, joined by the concat demuxer; a string says why not.

    Two ways to make the re-encoded pieces fit the copied middle (which starts on an IDR):

    * **same ids** (x264-made CRF sources): encode with the source's x264 settings, check that
      the parameter sets come out structurally equal to the source's, and keep one set of
      parameter sets in ``avcC``;
    * **new ids** (any encoder, and x264 sources whose settings did not reproduce): encode with
      ``quality``'s settings under SPS/PPS ids the source does not use, and write every SPS/PPS
      into the clip's ``avcC`` after muxing. Each piece starts on an IDR, so each activates its
      own parameter sets.

    No parameter sets are put in-band (``auto_convert`` off).
    """
    layout = _layout(job)
    if isinstance(layout, str):
        return layout
    stages = Stages(
        [(layout.head_count + layout.tail_count) * 1.0, 0.0, 0.0, layout.mid_count * 0.03],
        job.on_progress,
    )
    source = _source(job.info.path)
    if isinstance(source, str):
        return source
    encoding = _encoding(job, layout, source)
    encoded = _encode_pieces(job, layout, source, encoding, stages)
    if isinstance(encoded, str):
        return encoded
    same_ids, how = encoded
    in_place = same_ids or not encoding.pieces
    listing = _write_listing(job, layout)
    joined = job.dest if in_place else job.work / "joined.mp4"
    _concat(job, listing, joined, final=in_place, stages=stages)
    if not in_place:
        problem = rewrite_parameter_sets(joined, job.dest, source.avcc, encoding.pieces)
        if problem:
            return problem
    if layout.head_count:
        job.joins.append(job.frames.seconds(layout.keyframe - job.frames.first))
    if layout.tail_count:
        job.joins.append(job.frames.seconds(layout.mid_end - job.frames.first))
    return "smart", 0.0, _note(job, layout, encoding, how)


def _layout(job: CutJob) -> Layout | str:
    """The first IDR inside the segment without leading pictures, and the last clean cut point
    before the end: the copied middle between them; or why there is none."""
    info, frames = job.info, job.frames
    tb = info.video.time_base
    packets = list(frames.packets)
    keys = [i for i, p in enumerate(packets) if p.key and frames.first <= p.pts <= frames.last]
    if not keys:
        return "no keyframe inside the segment, so nothing can be stream-copied"
    key_index = next(
        (
            i
            for i in keys
            if not has_leading_pictures(packets, i)
            and h264_is_idr(info.path, float(packets[i].pts * tb), packets[i].dts)
        ),
        None,
    )
    if key_index is None:
        return (
            "open GOP: no keyframe inside the segment is an IDR picture without leading "
            "pictures, so a copied part would refer to frames before the cut"
        )
    return layout_from_keyframe(packets, key_index, frames)


def _source(path: Path) -> _Source | str:
    """The source's ``avcC``, its parsed parameter sets and x264 options, or why not usable."""
    avcc = source_avcc(path)
    if isinstance(avcc, str):
        return avcc
    try:
        sets = parse_parameter_sets((*avcc.sps, *avcc.pps))
    except BitstreamError as exc:
        return f"the source's H.264 parameter sets cannot be parsed ({exc})"
    return _Source(avcc, sets, source_headers(path).x264_options)


def _encoding(job: CutJob, layout: Layout, source: _Source) -> _Encoding:
    """Which pieces to encode, and whether to try the source's own settings first."""
    quality = job.quality
    seconds = (layout.head_count + layout.tail_count) * job.info.video.frame_duration
    fast = seconds > FAST_PIECES_SECONDS and quality.preset != FAST_PIECES_PRESET
    same_ids = (
        PREFER_SAME_IDS
        and not fast
        and x264_match_reason(source.options) is None
        and same_ids_affordable(source.options, quality)
    )
    piece_quality = quality.model_copy(update={"preset": FAST_PIECES_PRESET}) if fast else quality
    pieces = [(job.frames.first, layout.head_count, job.work / "head.mp4")]
    pieces = pieces if layout.head_count else []
    if layout.tail_count:
        pieces.append((layout.mid_end, layout.tail_count, job.work / "tail.mp4"))
    new_id = unused_parameter_set_id(source.sets)
    return _Encoding(pieces, same_ids, fast, seconds, piece_quality, new_id)


_NO_ID_LEFT = "the source uses every SPS id, none is left for the re-encoded pieces"


def _encode_pieces(
    job: CutJob, layout: Layout, source: _Source, encoding: _Encoding, stages: Stages
) -> tuple[bool, str] | str:
    """Encode the head and tail, with the source's ids if possible, else under a new id:
    (same ids, how — for the note), or why the pieces cannot be joined."""
    same_ids = encoding.same_ids
    how = "same parameter sets as the source (x264 settings matched)"
    for attempt in ("same", "new") if same_ids else ("new",):
        if not encoding.pieces:
            break
        if attempt == "new" and encoding.new_id is None:
            return _NO_ID_LEFT
        new_id = encoding.new_id if attempt == "new" else None
        _encode_attempt(job, layout, source, encoding, new_id, stages)
        problems = piece_problems(encoding.pieces, source.sets, new_id)
        if not problems:
            same_ids = attempt == "same"
            break
        if attempt == "new":
            return problems
        how = f"own parameter sets under id {encoding.new_id} ({problems}, so not reused)"
    if same_ids:
        return same_ids, how
    if encoding.new_id is None:
        return _NO_ID_LEFT
    if not encoding.pieces or not how.startswith("own"):
        how = f"own parameter sets under id {encoding.new_id}"
    if encoding.fast:
        how += (
            f", x264 {FAST_PIECES_PRESET} (the re-encoded frames span {encoding.seconds:.1f} s,"
            f" more than {FAST_PIECES_SECONDS:g} s)"
        )
    return same_ids, how


def _encode_attempt(
    job: CutJob,
    layout: Layout,
    source: _Source,
    encoding: _Encoding,
    new_id: int | None,
    stages: Stages,
) -> None:
    """One encode of the pieces: with the source's x264 settings (``new_id`` None) or with
    ``encoding.quality`` under ``new_id``."""
    sets = source.sets
    chroma = sets.pps[0].fields["chroma_qp_index_offset"] if sets.pps else None
    # With the machine to itself (threads 0), head and tail run as two processes side by
    # side: the tail's decoder works through up to a GOP for its few frames on one CPU
    # while the head is encoded; cutting clips in parallel (threads > 0), one process.
    pieces = encoding.pieces
    runs = [pieces] if job.threads > 0 else [[piece] for piece in pieces]
    quality = encoding.quality if new_id is not None else job.quality
    frames = job.frames
    run_pieces(
        [
            smart_encode_args(
                job.info,
                run,
                source.options,
                quality,
                job.threads,
                chroma_qp_offset=chroma,
                sps_id=new_id,
                packets=layout.packets,
            )
            for run in runs
        ],
        duration=frames.seconds(layout.keyframe - frames.first) if layout.head_count else None,
        on_progress=stages.callback(0),
        stop=job.stop,
    )


def _write_listing(job: CutJob, layout: Layout) -> Path:
    """The ffconcat listing: head, copied middle, tail (each placed by an explicit duration)."""
    info, frames, work = job.info, job.frames, job.work
    tb = info.video.time_base
    keyframe = layout.keyframe
    entries: list[str] = []
    if layout.head_count:
        # Explicit durations: each piece ends where the next source frame starts (VFR-exact).
        entries.append(
            f"file 'head.mp4'\nduration {seconds_arg(float((keyframe - frames.first) * tb))}\n"
        )
        entries.append(_middle_entry(job, layout))
    else:
        entries.append(f"file '{_copy_middle(job, layout).name}'\n")
    if layout.tail_count:
        entries.append(
            f"file 'tail.mp4'\nduration {seconds_arg(float((frames.end - layout.mid_end) * tb))}\n"
        )
    listing = work / "pieces.ffconcat"
    listing.write_text("ffconcat version 1.0\n" + "".join(entries), encoding="utf-8")
    return listing


def _middle_entry(job: CutJob, layout: Layout) -> str:
    """The copied middle, read straight from the source by the concat demuxer: from the keyframe
    (inpoint, microsecond-exact, so the seek lands on it) until the first packet not to copy
    (outpoint compares decode timestamps), placed by an explicit duration."""
    info, packets = job.info, layout.packets
    tb = info.video.time_base
    entry = f"file '{concat_quote(info.path.resolve())}'\n"
    entry += f"inpoint {seconds_arg(float(layout.keyframe * tb))}\n"
    after = layout.key_index + layout.mid_count
    if after < len(packets):
        entry += f"outpoint {floor_us(packets[after].dts * tb)}\n"
    entry += f"duration {seconds_arg(float((layout.mid_end - layout.keyframe) * tb))}\n"
    return entry


def _copy_middle(job: CutJob, layout: Layout) -> Path:
    """Starting on a keyframe: the middle stream-copied into a file of its own (as the first
    piece, a copied file starts cleanly at zero)."""
    info = job.info
    tb = info.video.time_base
    mid = job.work / "middle.mp4"
    args = ["-seek_timestamp", "1", "-ss", seconds_arg(float(layout.keyframe * tb))]
    args += ["-i", str(info.path)]
    args += ["-map", f"0:{info.video.index}", "-an", "-sn", "-dn", "-c:v", "copy"]
    args += ["-frames:v", str(layout.mid_count), "-video_track_timescale", str(tb.denominator)]
    args += ["-map_metadata", "-1", "-f", "mp4", str(mid)]
    run_ffmpeg(args, duration=float((layout.mid_end - layout.keyframe) * tb), stop=job.stop)
    return mid


def _concat(job: CutJob, listing: Path, out: Path, *, final: bool, stages: Stages) -> None:
    """Join the listed pieces with the source's audio (one piece, copied) into ``out``: the clip
    itself when ``final``, else an MP4 whose ``avcC`` is rewritten next."""
    info, frames = job.info, job.frames
    tb = info.video.time_base
    # auto_convert 0: packets stay as they are in the pieces (no in-band parameter sets).
    args = ["-f", "concat", "-safe", "0", "-auto_convert", "0", "-i", str(listing)]
    if info.audio is not None:
        # The audio's length is a packet count (-frames:a below): -t on copied Opus ended the
        # audio up to three packets before the video.
        args += ["-seek_timestamp", "1", "-ss", seconds_arg(frames.start_s), "-i", str(info.path)]
    # Every further audio track and subtitle, with the tags (issue 23; streams.py).
    more_in, more_out, _ = join_stream_args(
        info.path,
        info.audio.index if info.audio is not None else None,
        frames.start_s,
        frames.duration_s,
        "mp4",
        job.work,
        next_input=2 if info.audio is not None else 1,
    )
    args += [*more_in, "-map", "0:v:0"]
    if info.audio is not None:
        args += ["-map", f"1:{info.audio.index}", "-c:a", "copy", "-copypriorss:a", "0"]
    args += ["-c:v", "copy", "-video_track_timescale", str(tb.denominator)]
    if info.audio is not None:
        args += [a.replace("-frames:a", "-frames:a:0") for a in audio_frames_args(info, frames)]
    args += [*more_out, "-map_metadata", "-1", "-map_chapters", "-1"]
    if info.video.rotation:
        # Stored pixels everywhere; the MP4 muxer writes the display matrix from this tag
        # (ffprobe then reports the same rotation as the source's).
        args += ["-metadata:s:v:0", f"rotate={info.video.rotation}"]
    args += [*container_args("mp4")] if final else ["-f", "mp4"]
    run_ffmpeg(
        [*args, str(out)], duration=frames.duration_s, on_progress=stages.callback(3), stop=job.stop
    )


def _note(job: CutJob, layout: Layout, encoding: _Encoding, how: str) -> str:
    """What the smart cut did, for the clip's record."""
    note = (
        f"smart: {layout.reencoded()}, stream-copied {layout.mid_count} "
        f"(of {job.frames.count} frames)"
    )
    if encoding.pieces:
        note += f"; re-encoded pieces use {how}"
    if job.info.vfr:
        note += "; variable frame rate kept (source timestamps)"
    main = job.info.audio.index if job.info.audio is not None else None
    streams = describe(extra_stream_plan(source_streams(job.info.path), "mp4", main))
    return f"{note}; {streams}" if streams else note
