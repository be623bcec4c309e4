"""Joining pieces of a smart cut: the ffconcat listing's quoting and times, the audio taken as
one piece from the source, pieces encoded side by side, and their combined progress."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

from videojobs_worker.cut.frames import TOLERANCE, FrameRange
from videojobs_worker.ffmpeg import ffprobe_csv, run_ffmpeg, seconds_arg
from videojobs_worker.probe import MediaInfo


class Stages:
    """Combines the progress of several ffmpeg runs into one fraction."""

    def __init__(self, weights: Sequence[float], sink: Callable[[float], None] | None) -> None:
        total = sum(weights) or 1.0
        self._weights = [w / total for w in weights]
        self._done = 0.0
        self._sink = sink

    def callback(self, stage: int) -> Callable[[float], None] | None:
        if self._sink is None:
            return None
        base = sum(self._weights[:stage])
        weight = self._weights[stage]
        sink = self._sink
        return lambda fraction: sink(min(1.0, base + weight * fraction))


def cpus() -> int:
    """CPUs this process may run on (ffmpeg's own count uses the same affinity mask)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 0


def run_pieces(
    runs: Sequence[list[str]],
    *,
    duration: float | None,
    on_progress: Callable[[float], None] | None,
    stop: threading.Event | None,
) -> None:
    """Run ffmpeg for each argument list at once; progress follows the first (the head)."""
    failures: list[BaseException] = []

    def other(args: list[str]) -> None:
        try:
            run_ffmpeg(args, stop=stop)
        except BaseException as exc:  # re-raised in the caller's thread
            failures.append(exc)

    helpers = [threading.Thread(target=other, args=(a,), daemon=True) for a in runs[1:]]
    for helper in helpers:
        helper.start()
    try:
        run_ffmpeg(runs[0], duration=duration, on_progress=on_progress, stop=stop)
    finally:
        for helper in helpers:
            helper.join()
    if failures:
        raise failures[0]


def audio_frames_args(info: MediaInfo, frames: FrameRange) -> list[str]:
    """``-frames:a N``: the source's audio packets that start in the clip's time range (copied
    with ``-copypriorss 0``, so the first is the first at or after its start)."""
    assert info.audio is not None
    start, end = frames.start_s, frames.start_s + frames.duration_s
    rows = ffprobe_csv(
        ["-select_streams", f"{info.audio.index}", "-read_intervals", f"{start:.6f}%{end + 1:.6f}"]
        + ["-show_entries", "packet=pts_time", str(info.path)]
    )
    times = [float(r[0]) for r in rows if r and r[0] not in ("", "N/A")]
    count = sum(1 for t in times if start - float(TOLERANCE) <= t < end - float(TOLERANCE))
    return ["-frames:a", str(max(1, count))] if times else ["-t", seconds_arg(frames.duration_s)]


def concat_quote(path: Path) -> str:
    """A path for an ffconcat ``file`` line (single quotes escaped)."""
    return str(path).replace("'", "'\\''")


def floor_us(seconds: Fraction) -> str:
    """Seconds rounded down to the microsecond (for a strict ``>=`` comparison)."""
    micro = math.floor(seconds * 1_000_000)
    return f"{micro // 1_000_000}.{micro % 1_000_000:06d}"
