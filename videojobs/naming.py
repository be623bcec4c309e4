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
_RESERVED = {"con", "prn", "aux", "nul"} | {f"{p}{n}" for p in ("com", "lpt") for n in range(10)}
_DASHES = re.compile(r"-{2,}")


def _fold_char(char: str) -> str:
    """One character as stem text: ASCII spelling, a kept letter, or ``-`` (a separator)."""
    char = char.lower()
    if char in _SPELLED:
        return _SPELLED[char]
    if char.isascii():
        return char if char.isalnum() or char in "-_" else "-"
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
    return _DASHES.sub("-", folded).strip("-_")


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
    return cut.rstrip("-_")


def render_template(template: str, values: dict[str, Any]) -> str:
    """The naming template filled in; ``None`` values become empty text.

    Raises:
        ValueError: when a placeholder's format spec does not fit its value (``{title:02d}``).
    """
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
