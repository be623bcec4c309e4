"""WebVTT slices of a transcript, with times shifted to a clip (pure)."""

from __future__ import annotations

from videojobs.models import Transcript
from videojobs.times import format_timestamp

_MIN_CUE_SECONDS = 0.001


def _escape(text: str) -> str:
    """Cue text as WebVTT wants it: ``&``, ``<`` and ``>`` escaped, no blank lines (a blank
    line would end the cue); escaping ``>`` also rules out ``-->``."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    lines = [line.strip() for line in text.replace("\r", "").split("\n")]
    return "\n".join(line for line in lines if line)


def _cue_id(cue_id: str | None) -> str | None:
    if not cue_id:
        return None
    cleaned = " ".join(cue_id.split())
    if not cleaned or "-->" in cleaned:
        return None
    return cleaned


def slice_vtt(transcript: Transcript, start: float, end: float) -> str:
    """The cues of ``transcript`` overlapping ``[start, end)`` as a WebVTT document.

    Times are shifted so that ``start`` becomes 0; cues that begin before ``start`` or end after
    ``end`` are clipped to the clip's edges; cues that only touch an edge are left out. Cue ids
    are kept; an empty slice is a valid WebVTT file with no cues.
    """
    if end < start:
        raise ValueError(f"end ({end}) is before start ({start})")
    header = "WEBVTT"
    if transcript.language:
        header += f"\nLanguage: {' '.join(transcript.language.split())}"
    blocks = [header]
    for cue in transcript.cues:
        cue_start = max(cue.start, start)
        cue_end = min(cue.end, end)
        if cue_end - cue_start < _MIN_CUE_SECONDS:
            continue
        text = _escape(cue.text)
        if not text:
            continue
        timing = f"{format_timestamp(cue_start - start)} --> {format_timestamp(cue_end - start)}"
        cue_id = _cue_id(cue.id)
        blocks.append("\n".join(([cue_id] if cue_id else []) + [timing, text]))
    return "\n\n".join(blocks) + "\n"
