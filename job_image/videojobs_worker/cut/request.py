"""What a cut is asked to do (:class:`CutRequest`), what it produced (:class:`CutOutcome`), and
one cut under way (:class:`CutJob`: the request resolved to source timestamps and frames)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from videojobs.models import PlannedSegment, Quality
from videojobs_worker.cut.frames import FrameRange
from videojobs_worker.probe import MediaInfo

Format = Literal["mp4", "webm"]
PrecisionMode = Literal["copy", "accurate", "smart"]


@dataclass(frozen=True)
class CutRequest:
    """Cut ``segment`` out of ``source`` (probed as ``info``) into ``dest`` (a temporary path the
    caller owns), as ``fmt`` with ``precision`` and ``quality``."""

    source: Path
    info: MediaInfo
    segment: PlannedSegment
    fmt: Format
    precision: PrecisionMode
    quality: Quality
    dest: Path
    threads: int = 1
    """ffmpeg threads per run; 0 lets ffmpeg choose (the machine to itself)."""
    on_progress: Callable[[float], None] | None = None
    stop: threading.Event | None = None
    """When set, the ffmpeg run under way is stopped and the cut fails (TERMINATED)."""


@dataclass(frozen=True)
class CutOutcome:
    """What ``cut_clip`` produced."""

    path: Path
    precision_used: PrecisionMode
    start_offset: float
    """Actual minus planned start, seconds (non-zero only for copy)."""
    duration: float
    """Measured duration of the clip (video stream), seconds."""
    note: str | None = None


@dataclass(frozen=True)
class CutJob:
    """One cut under way: the source, its frames in the planned range, the output and how to run."""

    info: MediaInfo
    frames: FrameRange
    start: float
    """Planned start in the source's timestamps, seconds."""
    end: float
    """Planned (exclusive) end in the source's timestamps, seconds."""
    label: str
    """Names the clip in errors."""
    fmt: Format
    precision: PrecisionMode
    quality: Quality
    dest: Path
    work: Path
    """Temporary directory for the pieces (removed by ``cut_clip``)."""
    threads: int
    on_progress: Callable[[float], None] | None
    stop: threading.Event | None
    joins: list[float] = field(default_factory=list)
    """Clip times where re-encoded and copied pieces meet (set by a smart runner, for the check)."""


ModeResult = tuple[PrecisionMode, float, str | None]
"""A mode's outcome: (precision used, start offset, note)."""
SmartResult = ModeResult | str
"""A smart runner's outcome: (precision used, start offset, note), or why it fell back."""
