"""Variable-frame-rate clips whose last frame is shown across a long gap (issue 23: "a VFR
screen recording's clips end with video shorter than planned and than their audio").

A screen recorder writes a frame only when the screen changes, so the frame shown at a clip's
planned end may have been written seconds before it. Played from the source, that frame stays
on screen until the next one; a stream copy of it lasts one frame in the clip (a container
gives its last sample one frame's duration), so the video ended up to seconds before the plan
and before the audio. ``smart`` cannot hold a copied frame, so it steps aside for ``accurate``,
which repeats the frame up to the planned end (the ``fps`` filter).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from videojobs_worker.cut.frames import FrameRange
    from videojobs_worker.probe import MediaInfo


def held_seconds(info: MediaInfo, frames: FrameRange) -> float:
    """How much longer than one nominal frame the clip's last frame is shown in the source
    before the planned end (pure; 0 for a constant frame rate)."""
    if not info.vfr:
        return 0.0
    shown_until = min(frames.seconds(frames.end), frames.planned_end)
    return shown_until - frames.seconds(frames.last) - info.video.frame_duration


def held_frame_reason(info: MediaInfo, frames: FrameRange) -> str | None:
    """Why ``smart`` cannot cut this clip (its last frame is held across a gap for more than
    half a frame), or None (pure)."""
    held = held_seconds(info, frames)
    if held <= info.video.frame_duration / 2:
        return None
    return (
        f"variable frame rate: the source shows the clip's last frame for {held:.3f} s more "
        "than one frame, up to the planned end, and a stream-copied frame lasts one frame, so "
        "the video would end that much early"
    )
