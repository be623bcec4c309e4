"""A variable-frame-rate screen recording whose clip ends inside a long gap between frames
(issue 23: "7.33 s of video, 7.70 s of audio for a planned 8.5 s"): the clip lasts its plan,
video and audio alike, and shows the held frame to the end; ``smart`` says why it stepped aside.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mediakit import ffprobe_json, frame_numbers, run_ffmpeg
from videojobs.models import PlannedSegment, Quality
from videojobs_worker.cut import CutRequest, cut_clip
from videojobs_worker.probe import probe
from videojobs_worker.verify import clip_facts

pytestmark = pytest.mark.media

GAP = (200, 262)
"""Frames the recorder did not write (nothing changed on screen): 6.67 s to 8.73 s."""


def screen_recording(dest: Path) -> Path:
    """12 s, 30 fps frame-numbered video with frames 200-262 missing, and a tone."""
    blocks = [
        f"drawbox=x={k * 12}:y=0:w=12:h=12:color=white:t=fill:enable='mod(floor(n/{1 << k})\\,2)'"
        for k in range(16)
    ]
    chain = ["drawbox=x=0:y=0:w=192:h=12:color=black:t=fill", *blocks]
    chain.append(f"select='not(between(n\\,{GAP[0]}\\,{GAP[1]}))'")
    run_ffmpeg(
        ["-f", "lavfi", "-i", "testsrc2=size=192x108:rate=30:duration=12"]
        + ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=12"]
        + ["-vf", ",".join(chain), "-fps_mode", "vfr", "-c:v", "libx264", "-preset", "veryfast"]
        + ["-g", "45", "-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart", str(dest)]
    )
    return dest


@pytest.mark.parametrize("precision", ["smart", "accurate"])
def test_clip_ending_in_a_gap_lasts_its_plan(precision: str, tmp_path: Path) -> None:
    src = screen_recording(tmp_path / "screen.mp4")
    start, end = 1.2, 7.7
    segment = PlannedSegment(index=1, title="clip", start=start, end=end, stem="clip")
    request = CutRequest(src, probe(src), segment, "mp4", precision, Quality(), tmp_path / "c.mp4")  # type: ignore[arg-type]
    outcome = cut_clip(request)
    assert outcome.precision_used == "accurate"
    if precision == "smart":
        assert "shows the clip's last frame for 1.033 s" in (outcome.note or ""), outcome.note
    streams = {s["codec_type"]: s for s in ffprobe_json(outcome.path)["streams"]}
    assert abs(float(streams["video"]["duration"]) - (end - start)) < 1 / 60
    facts = clip_facts(outcome.path)
    assert facts.audio is not None and facts.video is not None
    audio_frame = facts.audio.max_packet_duration
    video_end = facts.video.end(1 / 30)
    assert video_end is not None and facts.audio.end(0.0) is not None
    assert abs(facts.audio.end(0.0) - video_end) <= audio_frame  # type: ignore[operator]
    numbers = frame_numbers(outcome.path)
    assert len(numbers) == round((end - start) * 30)
    assert numbers[0] == 36  # 1.2 s
    assert numbers[-1] == GAP[0] - 1  # the last frame written before the gap, held
    assert numbers[-31:] == [GAP[0] - 1] * 31  # shown for the last second of the clip
