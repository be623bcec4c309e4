"""File stems: the naming template rendered, slugified and made unique.

A stem is the file name without its extension (``03-kp-pods-what-is-a-pod`` gives
``03-kp-pods-what-is-a-pod.mp4``, ``.webm``, ``.jpg``, ``.vtt``). Stems are:

- **safe** on every filesystem and as S3 keys: lower case; ASCII letters, digits, ``-`` and
  ``_``, plus letters and digits of scripts that have no ASCII spelling; never empty, never
  starting with ``-``, ``_`` or ``.``, never a Windows device name (``con``, ``nul``, ...);
- **short**: at most :data:`MAX_STEM_CHARS` characters and :data:`MAX_STEM_BYTES` UTF-8 bytes,
  so that ``stem + ".subtitles.vtt"`` fits the 255-byte file-name limit;
- **readable**: Latin letters with accents lose them (``Café`` → ``cafe``), ligatures and
  compatibility forms are spelled out (``ﬁ`` → ``fi``, ``ß`` → ``ss``, full-width ``Ａ`` → ``a``);
  letters of other scripts (Cyrillic, Greek, CJK, Arabic, ...) are kept as they are, in NFC form
  (``Привет`` → ``привет``), because dropping them would leave nothing readable and guessing a
  transliteration would be wrong for many languages;
- **unique** in a plan: a repeated stem gets ``-2``, ``-3``, ... in plan order;
- **stable**: the same plan always gives the same stems.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable
from typing import Any

MAX_STEM_CHARS = 100
"""Longest stem, in characters."""

MAX_STEM_BYTES = 200
"""Longest stem, in UTF-8 bytes (non-ASCII letters take two to four bytes)."""

# Letters NFKD does not decompose but that have a well-known ASCII spelling.
_SPELLED = {
    "ß": "ss",
    "æ": "ae",
    "œ": "oe",
    "ø": "o",
    "đ": "d",
    "ð": "d",
    "ł": "l",
    "þ": "th",
    "ı": "i",
    "ŋ": "n",
}
NAMING_MAX_WIDTH = 100
"""Widest field width a naming placeholder may ask for (``{index:>100}``): a stem is at most
:data:`MAX_STEM_CHARS` characters anyway."""

NAMING_MAX_PRECISION = 100
"""Largest precision for text placeholders (``{title:.40}`` keeps 40 characters)."""

NAMING_MAX_TIME_PRECISION = 6
"""Largest precision for ``start`` and ``end`` (``{start:.3f}``: milliseconds)."""

_TEXT_FIELDS = ("knowledge_id", "title")
_TIME_FIELDS = ("start", "end")
# Format codes each placeholder may use: the ones that make sense in a file name.
NAMING_CODES: dict[str, str] = {
    "index": "d",
    "knowledge_id": "s",
    "title": "s",
    "start": "fg",
    "end": "fg",
}
# Python's format-spec mini-language: [[fill]align][sign][z][#][0][width][,_][.precision][type]
_FORMAT_SPEC = re.compile(
    r"(?:(?P<fill>.)?(?P<align>[<>=^]))?(?P<sign>[-+ ])?z?#?0?(?P<width>\d+)?[,_]?"
    r"(?:\.(?P<precision>\d+))?(?P<type>[a-zA-Z%])?",
    re.DOTALL,
)


def check_template(template: str, fields: Iterable[str] | None = None) -> None:
    """Check a naming template before rendering it: known placeholders, no conversions, and
    format specs with a bounded width and precision and a format code that fits the value.

    Instant whatever the template (no rendering), so that ``{index:>99999999}`` is refused
    before it can allocate anything.

    Raises:
        ValueError: naming the placeholder and the limit.
    """
    allowed = tuple(fields) if fields is not None else tuple(NAMING_CODES)
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"invalid naming template {template!r}: {exc}") from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in allowed:
            raise ValueError(f"unknown placeholder {{{name}}} in naming; use {', '.join(allowed)}")
        where = f"{{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}"
        if conversion is not None:
            raise ValueError(f"{where}: conversions (!{conversion}) are not allowed in naming")
        if not spec:
            continue
        # equivalent mutants: string.Formatter yields a nested spec with both braces or fails
        if "{" in spec or "}" in spec:  # pragma: no mutate
            raise ValueError(f"{where}: nested placeholders are not allowed in a format spec")
        m = _FORMAT_SPEC.fullmatch(spec)
        if m is None:
            raise ValueError(f"{where}: invalid format spec {spec!r}")
        codes = NAMING_CODES.get(name, "s")
        code = m["type"]
        if code is not None and code not in codes:
            kind = "text" if name in _TEXT_FIELDS else "a number"
            raise ValueError(
                f"{where}: format code {code!r} does not fit {name} ({kind}); "
                f"use {' or '.join(repr(c) for c in codes)}"
            )
        if m["width"] is not None and int(m["width"]) > NAMING_MAX_WIDTH:
            raise ValueError(f"{where}: width {m['width']} is over the limit of {NAMING_MAX_WIDTH}")
        if m["precision"] is not None:
            limit = NAMING_MAX_TIME_PRECISION if name in _TIME_FIELDS else NAMING_MAX_PRECISION
            # equivalent mutants: only index takes "d" (NAMING_CODES), so code == "d" adds nothing
            if name == "index" or code == "d":  # pragma: no mutate
                raise ValueError(f"{where}: precision is not allowed with an integer")
            if int(m["precision"]) > limit:
                raise ValueError(
                    f"{where}: precision {m['precision']} is over the limit of {limit} for {name}"
                )
        if name in _TEXT_FIELDS and (m["sign"] or m["align"] == "="):
            raise ValueError(f"{where}: sign and '=' alignment are for numbers, not {name}")


_RESERVED = {"con", "prn", "aux", "nul"} | {f"{p}{n}" for p in ("com", "lpt") for n in range(10)}
_DASHES = re.compile(r"-{2,}")


def _fold_char(char: str) -> str:
    """One character as stem text: ASCII spelling, a kept letter, or ``-`` (a separator)."""
    char = char.lower()
    if char in _SPELLED:
        return _SPELLED[char]
    if char.isascii():
        # equivalent mutants: a lower-cased char is never "X" ("-_" → "XX-_XX")
        return char if char.isalnum() or char in "-_" else "-"  # pragma: no mutate
    spelled = "".join(
        c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
    ).lower()
    if any(c.isascii() and c.isalnum() for c in spelled) and all(
        c.isascii() or not c.isalnum() for c in spelled
    ):
        return "".join(c if c.isascii() and c.isalnum() else "-" for c in spelled)
    return char if char.isalnum() else "-"


def slugify(text: str) -> str:
    """The stem form of ``text`` (may be empty; see the module docstring for the rules)."""
    folded = "".join(_fold_char(c) for c in unicodedata.normalize("NFC", text))
    folded = unicodedata.normalize("NFC", folded)
    # equivalent mutants: the folded text is lower case, never "X" (strip("XX-_XX"))
    return _DASHES.sub("-", folded).strip("-_")  # pragma: no mutate


def truncate(stem: str, max_chars: int = MAX_STEM_CHARS, max_bytes: int = MAX_STEM_BYTES) -> str:
    """Shorten a stem to the limits, preferring to cut at a ``-``."""
    if len(stem) <= max_chars and len(stem.encode()) <= max_bytes:
        return stem
    cut = stem[:max_chars]
    while len(cut.encode()) > max_bytes:
        cut = cut[:-1]
    dash = cut.rfind("-")
    if dash >= len(cut) // 2:
        cut = cut[:dash]
    # equivalent mutants: stems are slugified (lower case) before they are cut ("XX-_XX")
    return cut.rstrip("-_")  # pragma: no mutate


def render_template(template: str, values: dict[str, Any]) -> str:
    """The naming template filled in; ``None`` values become empty text.

    Raises:
        ValueError: when a placeholder's format spec does not fit its value (``{title:02d}``).
    """
    try:
        check_template(template)
    except ValueError as exc:
        raise ValueError(f"cannot render naming template {template!r}: {exc}") from None
    clean = {k: ("" if v is None else v) for k, v in values.items()}
    try:
        return template.format(**clean)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"cannot render naming template {template!r}: {exc}") from None


def make_stem(template: str, values: dict[str, Any], fallback: str) -> str:
    """A safe stem for one clip (not yet unique); ``fallback`` when nothing readable is left."""
    stem = truncate(slugify(render_template(template, values)))
    if not stem:
        stem = truncate(slugify(fallback))
    if stem in _RESERVED:
        stem += "-clip"
    return stem


def unique_stems(stems: Iterable[str]) -> list[str]:
    """Make stems unique in order: a repeat gets ``-2``, ``-3``, ... (still within the limits)."""
    taken: set[str] = set()
    result: list[str] = []
    for stem in stems:
        candidate, n = stem, 1
        while candidate in taken:
            n += 1
            suffix = f"-{n}"
            candidate = (
                truncate(stem, MAX_STEM_CHARS - len(suffix), MAX_STEM_BYTES - len(suffix)) + suffix
            )
        taken.add(candidate)
        result.append(candidate)
    return result
