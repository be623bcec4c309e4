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


# --- killing the surviving mutants of .ci/mutation (docs/testing.md) -------------------------


def test_check_template_with_its_own_fields() -> None:
    """A caller may name the placeholders it allows; the others are refused, naming the allowed."""
    with pytest.raises(ValueError) as info:
        check_template("{index}", fields=["title", "start"])
    assert str(info.value) == "unknown placeholder {index} in naming; use title, start"
    check_template("{part:s}-{part:>5}", fields=["part"])  # unknown to NAMING_CODES: text
    with pytest.raises(
        ValueError, match=r"format code 'X' does not fit part \(a number\); use 's'"
    ):
        check_template("{part:X}", fields=["part"])


def test_every_placeholder_is_checked_not_only_the_first() -> None:
    for template in ("{title}-{index:>101}", "{{literal}} {title:.101}", "x{title}{start:.7f}"):
        with pytest.raises(ValueError, match="over the limit"):
            check_template(template)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{title!r}", "{title!r}: conversions (!r) are not allowed in naming"),
        ("{title!s:>5}", "{title!s:>5}: conversions (!s) are not allowed in naming"),
        ("{title:03d}", "{title:03d}: format code 'd' does not fit title (text); use 's'"),
        ("{knowledge_id:f}", "{knowledge_id:f}: format code 'f' does not fit knowledge_id (text)"),
        ("{index:s}", "{index:s}: format code 's' does not fit index (a number); use 'd'"),
        ("{start:d}", "{start:d}: format code 'd' does not fit start (a number); use 'f' or 'g'"),
        ("{title:+}", "{title:+}: sign and '=' alignment are for numbers, not title"),
        ("{title:=10}", "{title:=10}: sign and '=' alignment are for numbers, not title"),
        ("{knowledge_id: <9}", None),
    ],
)
def test_refusals_quote_the_placeholder_and_say_what_fits(
    template: str, message: str | None
) -> None:
    if message is None:
        check_template(template)
        return
    with pytest.raises(ValueError) as info:
        check_template(template)
    assert str(info.value).startswith(message)


def test_signs_and_equals_alignment_are_fine_for_numbers() -> None:
    for template in ("{index:+}", "{index:=+5}", "{start:=+8.2f}", "{end:+.1f}"):
        check_template(template)


def test_render_failures_name_the_template() -> None:
    with pytest.raises(ValueError) as info:
        render_template("{start:.1f}", {"start": "not a number"})
    assert str(info.value).startswith("cannot render naming template '{start:.1f}': ")
    with pytest.raises(ValueError, match=r"cannot render naming template '\{title\}': "):
        render_template("{title}", {})


@pytest.mark.parametrize(
    ("text", "stem"),
    [
        ("a℅b", "ac-ob"),  # care-of: ASCII spelling "c/o", its slash becomes a dash
        ("a℀b", "aa-cb"),  # account-of: "a/c"
        ("aŉb", "aŉb"),  # ŉ spells as "ʼn": a letter without an all-ASCII spelling is kept
        ("aﱞb", "aﱞb"),  # an Arabic ligature whose compatibility form is marks only: kept
        ("aͺb", "aͺb"),  # Greek ypogegrammeni: kept
    ],
)
def test_compatibility_forms_are_spelled_only_when_all_ascii(text: str, stem: str) -> None:
    assert slugify(text) == stem


def test_the_byte_limit_drops_one_character_at_a_time() -> None:
    assert truncate("字" * 81) == "字" * 66  # 198 bytes; 67 would be 201


def test_a_cut_goes_to_the_last_dash_not_the_first() -> None:
    stem = "a" * 55 + "-" + "b" * 10 + "-" + "c" * 50
    assert truncate(stem) == "a" * 55 + "-" + "b" * 10


def test_half_of_an_odd_length_rounds_down() -> None:
    # 9 characters kept: a dash at index 4 is at half (9 // 2): cut there
    assert truncate("abcd-efghijk", max_chars=9) == "abcd"
    assert truncate("abc-defghijk", max_chars=9) == "abc-defgh"
