"""The source frames of a clip, and where a stream copy of them may stop (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from videojobs.models import ExitCode
from videojobs_worker.errors import WorkerError
from videojobs_worker.probe import MediaInfo, Packet

TOLERANCE = Fraction(1, 2000)
"""Half a millisecond: plans are rounded to the millisecond, frame times are not."""


@dataclass(frozen=True)
class FrameRange:
    """The source frames of a clip, from a packet listing."""

    time_base: Fraction
    first: int
    """pts of the first frame (ticks)."""
    last: int
    """pts of the last frame (ticks)."""
    count: int
    end: int
    """pts just after the last frame: the next frame's, or last + one frame at the end."""
    packets: tuple[Packet, ...]
    planned_end: float = 0.0
    """The planned (exclusive) end, seconds."""
    at_eof: bool = False
    """True when the listing ran out: no frame after the last one."""

    def seconds(self, ticks: int) -> float:
        return float(ticks * self.time_base)

    @property
    def start_s(self) -> float:
        return self.seconds(self.first)

    @property
    def duration_s(self) -> float:
        return self.seconds(self.end - self.first)


def frame_range(
    packets: Sequence[Packet], time_base: Fraction, start: float, end: float, frame: Fraction
) -> FrameRange:
    """The frames with ``start <= t < end`` (pure). ``frame`` is the nominal frame duration in
    seconds, used only after the last frame of the file."""
    lo = Fraction(str(start)) - TOLERANCE
    hi = Fraction(str(end)) - TOLERANCE
    times = sorted({p.pts for p in packets})
    inside = [t for t in times if lo <= t * time_base < hi]
    if not inside:
        raise WorkerError(
            ExitCode.PLAN_ERROR,
            "EmptySegment",
            f"no video frame between {start:.3f}s and {end:.3f}s of the source",
        )
    later = [t for t in times if t > inside[-1]]
    after = later[0] if later else inside[-1] + max(1, round(frame / time_base))
    return FrameRange(
        time_base, inside[0], inside[-1], len(inside), after, tuple(packets), end, not later
    )


def clean_cut_points(
    packets: Sequence[Packet], begin: int, end_of_stream: int | None = None
) -> list[tuple[int, int]]:
    """Where a stream copy that starts at decode index ``begin`` (a keyframe) may stop (pure).

    Returns ``(n, x)`` pairs: copying the first ``n`` packets from ``begin`` in decode order
    shows exactly the frames with ``pts < x`` (from the keyframe on) and needs no later packet.
    With B-frames this is true only where a mini-GOP closes. Copying the whole listing counts
    only when it is the end of the stream (``end_of_stream``: the pts just after the last
    frame).
    """
    tail = packets[begin:]
    suffix_min: list[int | None] = [None] * (len(tail) + 1)
    suffix_min[len(tail)] = end_of_stream
    for i in range(len(tail) - 1, -1, -1):
        later = suffix_min[i + 1]
        suffix_min[i] = tail[i].pts if later is None else min(tail[i].pts, later)
    points = []
    prefix_max = tail[0].pts if tail else 0
    for n in range(1, len(tail) + 1):
        prefix_max = max(prefix_max, tail[n - 1].pts)
        x = suffix_min[n]
        if x is not None and prefix_max < x:
            points.append((n, x))
    return points


def has_leading_pictures(packets: Sequence[Packet], index: int) -> bool:
    """True when a packet after ``packets[index]`` in decode order is shown before it (pure):
    leading pictures, as an open GOP has, which may refer to the previous GOP."""
    key = packets[index].pts
    return any(p.pts < key for p in packets[index + 1 :])


def nominal_rate(info: MediaInfo) -> Fraction:
    """The constant frame rate a re-encode of a VFR source is normalised to."""
    r_rate, avg_rate = info.video.r_frame_rate, info.video.avg_frame_rate
    if r_rate and r_rate <= 60:
        return r_rate
    if avg_rate:
        return Fraction(round(float(avg_rate) * 1000), 1000)
    return Fraction(30)


def longest_frame(info: MediaInfo, frames: FrameRange) -> float:
    """The nominal frame duration, or for a VFR source the longest gap between its frames in
    the clip (the last frame's duration in a clip is the container's guess)."""
    if not info.vfr:
        return info.video.frame_duration
    times = sorted(p.pts for p in frames.packets if frames.first <= p.pts <= frames.end)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    return max(info.video.frame_duration, frames.seconds(max(gaps, default=0)))


@dataclass(frozen=True)
class Layout:
    """Where a smart cut splits a clip, in the source's packets: a re-encoded head, a copied
    middle from a clean keyframe, a re-encoded tail (frame counts, source pts)."""

    packets: list[Packet]
    key_index: int
    """Decode index of the keyframe the copied middle starts on."""
    keyframe: int
    """Its pts."""
    head_count: int
    """Frames re-encoded before the keyframe."""
    mid_count: int
    """Packets copied from the keyframe on."""
    mid_end: int
    """pts where the copied middle ends (the tail, if any, starts there)."""
    tail_count: int
    """Frames re-encoded after the middle."""

    def reencoded(self) -> str:
        """The re-encoded pieces, for a clip's note: ``re-encoded 3 head frame(s) and ...``."""
        parts = [f"re-encoded {self.head_count} head frame(s)"]
        if self.tail_count:
            parts.append(f"{self.tail_count} tail frame(s)")
        return " and ".join(parts)


def layout_from_keyframe(
    packets: Sequence[Packet], key_index: int, frames: FrameRange
) -> Layout | str:
    """The clip's layout when the copied middle starts at the clean keyframe
    ``packets[key_index]`` and ends at the last clean cut point before the clip's end (pure);
    or why there is no such point."""
    keyframe = packets[key_index].pts
    head_count = sum(1 for p in packets if frames.first <= p.pts < keyframe)
    end_of_stream = frames.end if frames.at_eof else None
    points = [
        (n, x) for n, x in clean_cut_points(packets, key_index, end_of_stream) if x <= frames.end
    ]
    if not points:
        return "no clean cut point between the keyframe and the end"
    mid_count, mid_end = points[-1]
    tail_count = sum(1 for p in packets if mid_end <= p.pts <= frames.last)
    return Layout(
        list(packets),
        key_index,
        keyframe,
        head_count,
        mid_count,
        min(mid_end, frames.end),
        tail_count,
    )
