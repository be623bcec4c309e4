"""Cut one clip out of a probed source with ffmpeg, in one of three precision modes.

See ``docs/cutting.md`` for the why. In short, for a planned range [S, E):

* **frames**: the clip holds exactly the source frames whose time t satisfies S <= t < E (half a
  millisecond of tolerance, because plans are rounded to the millisecond). Every seek goes to the
  microsecond-exact time of a frame, which ffmpeg rounds to exactly that frame's tick: no
  half-frame offsets, no duplicated first frame, no keyframe snapping by accident.
* **copy** seeks to the keyframe at or before S and stream-copies whole packets up to the clean
  cut point nearest E. It starts on the keyframe itself, so there is no hidden (edit-list)
  pre-roll: ``start_offset`` is the keyframe's time minus S, and ``note`` says so.
* **accurate** decodes from the keyframe before S and re-encodes exactly the frames in [S, E).
* **smart** re-encodes the frames from S to the next keyframe (head) and from the last clean cut
  point before E to E (tail; at most a mini-GOP of B-frames), stream-copies everything between,
  joins the pieces with the concat demuxer and takes the audio as one piece from the source. It
  falls back to accurate (and says why) when the join cannot be clean.

Modules: :mod:`.request` (what a cut is asked and produced), :mod:`.frames` (the source frames
of a clip), :mod:`.args` (shared ffmpeg options), :mod:`.accurate`, :mod:`.streamcopy` (the
``copy`` mode), :mod:`.h264smart` with :mod:`.x264` and :mod:`.paramsets` (the H.264 smart
cut), :mod:`.keyframes` (the VP9/AV1 smart cut), :mod:`.join` (concat pieces), :mod:`.clip`
(one clip: mode, fallbacks, check) and :mod:`.thumbnail`.
"""

from videojobs_worker.cut.clip import cut_clip
from videojobs_worker.cut.request import CutOutcome, CutRequest, Format, PrecisionMode
from videojobs_worker.cut.thumbnail import make_thumbnail

__all__ = ["CutOutcome", "CutRequest", "Format", "PrecisionMode", "cut_clip", "make_thumbnail"]
