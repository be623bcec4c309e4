"""The parsers build Cue and Word without validating them again (speed, issue 27): what they
build must be exactly what pydantic builds from the same fields."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from videojobs.models import Cue, Word
from videojobs.transcripts._common import _new_cue, _new_word

times = st.floats(0, 1e6, allow_nan=False).map(lambda t: round(t, 3))


@given(
    index=st.integers(1, 10**6),
    cue_id=st.none() | st.text(max_size=5),
    start=times,
    length=times,
    text=st.text(min_size=1, max_size=20),
    line=st.none() | st.integers(1, 10**6),
    words=st.none() | st.lists(st.tuples(times, times, st.text(min_size=1, max_size=5))),
)
def test_fast_construct_is_pydantics(
    index: int,
    cue_id: str | None,
    start: float,
    length: float,
    text: str,
    line: int | None,
    words: list[tuple[float, float, str]] | None,
) -> None:
    fields = {"index": index, "id": cue_id, "start": start, "end": start + length}
    fields |= {"text": text, "line": line}
    validated = Cue(
        **fields,
        words=None if words is None else [Word(start=a, end=b, text=t) for a, b, t in words],
    )
    fast = _new_cue(
        **fields,
        words=None if words is None else [_new_word(start=a, end=b, text=t) for a, b, t in words],
    )
    assert fast == validated
    assert fast.model_dump() == validated.model_dump()
    assert fast.model_dump_json(by_alias=True) == validated.model_dump_json(by_alias=True)
    assert fast.model_fields_set == validated.model_fields_set
    assert Cue.model_validate(fast.model_dump()) == fast


def test_parsing_leaves_the_garbage_collector_as_it_was() -> None:
    import gc

    from videojobs.errors import TranscriptError
    from videojobs.transcripts import parse_transcript

    vtt = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhi\n"
    assert gc.isenabled()
    parse_transcript(vtt)
    assert gc.isenabled()
    try:
        parse_transcript("WEBVTT\n\nnot a cue\n")
    except TranscriptError:
        pass
    assert gc.isenabled()
    gc.disable()
    try:
        parse_transcript(vtt)
        assert not gc.isenabled()
    finally:
        gc.enable()
