"""Property tests against a reference writer (issue 27): for every supported format pysubs2
writes (SRT, WebVTT, TTML, ASS, SSA), a document it writes from random cues parses back to the
same cues: times, text and order."""

from __future__ import annotations

import os

import pysubs2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videojobs.transcripts import parse_transcript

SETTINGS = settings(
    max_examples=int(os.environ.get("VIDEOJOBS_HYPOTHESIS_EXAMPLES", "100")), deadline=None
)

# pysubs2's format name -> (ours, time step in ms, hours of the first start): ASS/SSA keep
# centiseconds and end at 9:59:59.99
FORMATS = {
    "srt": ("srt", 1, 30),
    "vtt": ("webvtt", 1, 30),
    "ttml": ("ttml", 1, 30),
    "ass": ("ass", 10, 9),
    "ssa": ("ssa", 10, 9),
}

# Words of letters (any script), digits and punctuation that no format treats as markup
word = st.text(
    alphabet=st.characters(
        categories=["L", "Nd"], include_characters=".,!?'-", exclude_characters="\u2028\u2029"
    ),
    min_size=1,
    max_size=8,
)
line = st.lists(word, min_size=1, max_size=6).map(" ".join)
text = st.lists(line, min_size=1, max_size=2).map("\n".join)

Cue = tuple[int, int, str]


@st.composite
def cue_lists(draw: st.DrawFn, step: int, hours: int) -> list[Cue]:
    """Cues with increasing starts (whole ``step`` ms), from up to ``hours`` in."""
    t = draw(st.integers(0, hours * 3_600_000)) // step * step
    cues = []
    for _ in range(draw(st.integers(1, 12))):
        t += draw(st.integers(1, 5000)) // step * step + step
        cues.append((t, t + draw(st.integers(0, 20_000)) // step * step, draw(text)))
    return cues


def _written(cues: list[Cue], fmt: str) -> str:
    subs = pysubs2.SSAFile()
    for start, end, plain in cues:
        event = pysubs2.SSAEvent(start=start, end=end)
        event.plaintext = plain
        subs.events.append(event)
    return subs.to_string(fmt)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@SETTINGS
@given(data=st.data())
def test_pysubs2_documents_parse_back_to_their_cues(fmt: str, data: st.DataObject) -> None:
    ours, step, hours = FORMATS[fmt]
    cues = data.draw(cue_lists(step, hours))
    document = _written(cues, fmt)
    for given_format in (ours, "auto"):
        # rolling=False: random cues may happen to roll (merging is tested on its own)
        transcript = parse_transcript(document, given_format, rolling=False)
        assert transcript.format == ours
        assert [(c.start, c.end, c.text) for c in transcript.cues] == [
            (a / 1000, b / 1000, t) for a, b, t in cues
        ]
        assert [c.index for c in transcript.cues] == list(range(1, len(cues) + 1))
