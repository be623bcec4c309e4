"""File stems: safe, short, readable, unique."""

from __future__ import annotations

import re

import pytest

from videojobs.naming import (
    MAX_STEM_BYTES,
    MAX_STEM_CHARS,
    check_template,
    make_stem,
    render_template,
    slugify,
    truncate,
    unique_stems,
)


@pytest.mark.parametrize(
    ("text", "stem"),
    [
        ("What is a Pod?", "what-is-a-pod"),
        ("  --Leading/trailing__  ", "leading-trailing"),
        ("Café déjà vu", "cafe-deja-vu"),
        ("Straße, Æsir, Łódź, Øresund", "strasse-aesir-lodz-oresund"),
        ("ﬁnal ½ Ｆｕｌｌ²", "final-1-2-full2"),
        ("Привет, мир!", "привет-мир"),
        ("Ελληνικά μαθήματα", "ελληνικά-μαθήματα"),
        ("東京 入門", "東京-入門"),
        ("한국어 강의", "한국어-강의"),
        ("../../etc/passwd", "etc-passwd"),
        ('a\\b:c*d?e"f<g>h|i', "a-b-c-d-e-f-g-h-i"),
        ("tab\tnew\nline", "tab-new-line"),
        ("🎉 party 🎉", "party"),
        ("kp.one_two", "kp-one_two"),
    ],
)
def test_slugify(text: str, stem: str) -> None:
    assert slugify(text) == stem


def test_stems_are_nfc_and_s3_safe() -> None:
    decomposed = "Йога"  # И + combining breve: NFD input
    assert slugify(decomposed) == "йога"
    for text in ("Hello World", "Привет", "x/y", "a+b=c", "50% off!", "über"):
        assert re.fullmatch(r"[\w-]+", slugify(text))
        assert "/" not in slugify(text)


def test_fallback_and_reserved_names() -> None:
    assert make_stem("{title}", {"title": "???"}, "segment-03") == "segment-03"
    assert make_stem("{title}", {"title": "CON"}, "x") == "con-clip"
    assert make_stem("{knowledge_id}-{title}", {"knowledge_id": None, "title": "T"}, "x") == "t"


def test_long_titles_are_cut_within_limits() -> None:
    for text in ("word " * 60, "я" * 300, "字" * 300, "x" * 500):
        stem = make_stem("{title}", {"title": text}, "x")
        assert 0 < len(stem) <= MAX_STEM_CHARS
        assert len(stem.encode()) <= MAX_STEM_BYTES
        assert not stem.endswith("-")
    assert make_stem("{title}", {"title": "word " * 60}, "x").endswith("word")


@pytest.mark.parametrize(
    ("stem", "cut"),
    [
        ("ab-" * 33 + "a", "ab-" * 33 + "a"),  # exactly 100 characters: kept whole
        ("я" * 100, "я" * 100),  # exactly 200 bytes: kept whole
        ("字" * 60 + "-" + "b" * 19, "字" * 60 + "-" + "b" * 19),  # 200 bytes, a dash: whole
        ("я" * 150, "я" * 100),  # 2-byte letters: 100 characters are 200 bytes, both limits
        ("字" * 300, "字" * 66),  # 3-byte letters: the byte limit cuts first (198 bytes)
        ("a" * 60 + "-" + "b" * 60, "a" * 60),  # a dash in the second half: cut there
        ("a" * 50 + "-" + "b" * 60, "a" * 50),  # a dash at exactly half: cut there
        ("a" * 49 + "-" + "b" * 60, "a" * 49 + "-" + "b" * 50),  # before half: keep the text
        ("a" * 40 + "-" + "b" * 58 + "_" + "c" * 10, "a" * 40 + "-" + "b" * 58),  # no tail _
        ("-".join(["word"] * 60), "-".join(["word"] * 20)),  # whole words, no trailing dash
    ],
    ids=[
        "100-chars",
        "200-bytes",
        "200-bytes-dash",
        "2-byte",
        "3-byte",
        "dash-late",
        "dash-at-half",
        "dash-early",
        "strip",
        "words",
    ],
)
def test_truncation_shape(stem: str, cut: str) -> None:
    """Exactly where a long stem is cut (issue 29 item 5: the limits and the dash rule)."""
    assert truncate(stem) == cut


def test_unique_suffix_fits_the_limits_exactly() -> None:
    long = "x" * MAX_STEM_CHARS
    assert unique_stems([long, long, long]) == [long, "x" * 98 + "-2", "x" * 98 + "-3"]
    wide = "字" * 66 + "ab"  # 200 bytes in 68 characters: the suffix takes room in bytes
    assert unique_stems([wide, wide])[1] == "字" * 66 + "-2"


def test_render_template_errors() -> None:
    assert render_template("{index:02d}-{start:.0f}", {"index": 3, "start": 65.5}) == "03-66"
    with pytest.raises(ValueError, match="naming template"):
        render_template("{title:03d}", {"title": "x"})


def test_unique_stems() -> None:
    assert unique_stems(["a", "b", "a", "a", "a-2"]) == ["a", "b", "a-2", "a-3", "a-2-2"]
    long = "x" * MAX_STEM_CHARS
    stems = unique_stems([long, long])
    assert stems[1] != stems[0] and len(stems[1]) <= MAX_STEM_CHARS and stems[1].endswith("-2")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{index:>99999999}", "{index:>99999999}: width 99999999 is over the limit of 100"),
        ("{start:.99999999f}", "{start:.99999999f}: precision 99999999 is over the limit of 6"),
        ("{end:>101.2f}", "width 101 is over the limit of 100"),
        ("{title:.101}", "precision 101 is over the limit of 100 for title"),
        ("{title:03d}", "format code 'd' does not fit title"),
        ("{index:s}", "format code 's' does not fit index"),
        ("{start:x}", "format code 'x' does not fit start"),
        ("{index:.3}", "{index:.3}: precision is not allowed with an integer"),
        ("{title!r}", "conversions (!r) are not allowed"),
        ("{index:{title}}", "nested placeholders are not allowed"),
        ("{index:^^^}", "invalid format spec"),
        ("{title.__class__}", "unknown placeholder {title.__class__}"),
        ("{title[0]}", "unknown placeholder {title[0]}"),
        ("{", "invalid naming template"),
    ],
)
def test_check_template_refuses_unbounded_or_unfit_specs(template: str, expected: str) -> None:
    with pytest.raises(ValueError) as info:
        check_template(template)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    "template",
    ["{index:02d}-{knowledge_id}-{title}", "{start:.3f}-{end:08.1f}", "{title:_<100.40}", "x"],
)
def test_check_template_accepts_names(template: str) -> None:
    check_template(template)
    render_template(
        template, {"index": 1, "knowledge_id": "k", "title": "T", "start": 1.5, "end": 2.0}
    )


def test_format_spec_bombs_are_refused_by_the_spec_model_instantly() -> None:
    import time

    from pydantic import ValidationError

    from videojobs.models.spec import Output

    for bomb, limit in (("{index:>99999999}", "100"), ("{start:.99999999f}", "6")):
        began = time.perf_counter()
        with pytest.raises(ValidationError) as info:
            Output.model_validate({"naming": bomb, "storage": {"pvc": {"claimName": "c"}}})
        assert time.perf_counter() - began < 0.5
        assert f"over the limit of {limit}" in str(info.value)
        with pytest.raises(ValueError, match=f"over the limit of {limit}"):
            render_template(bomb, {"index": 1, "start": 1.0})


@pytest.mark.parametrize(
    ("template", "refused"),
    [
        ("{title:.100}", None),
        ("{knowledge_id:.100}", None),
        ("{title:.101}", "precision 101 is over the limit of 100 for title"),
        ("{start:.6f}", None),
        ("{end:.6g}", None),
        ("{start:.7f}", "precision 7 is over the limit of 6 for start"),
        ("{end:.7}", "precision 7 is over the limit of 6 for end"),
        ("{index:>100}", None),
        ("{index:>101}", "width 101 is over the limit of 100"),
    ],
)
def test_precision_and_width_limits_at_the_boundary(template: str, refused: str | None) -> None:
    """The limits are inclusive: the limit itself is accepted, one more is refused (issue 29
    item 5: naming's precision boundary); times have their own, smaller limit."""
    if refused is None:
        check_template(template)
        render_template(
            template, {"index": 1, "knowledge_id": "k", "title": "T", "start": 1.5, "end": 2.0}
        )
    else:
        with pytest.raises(ValueError) as info:
            check_template(template)
        assert refused in str(info.value)
