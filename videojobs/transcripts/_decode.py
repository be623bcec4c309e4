"""Transcript bytes to text: one rule for every path (CLI files, ConfigMaps, mounted files, URLs).

In order:

1. ``transcript.encoding``, when given, is used as is (a BOM of that same encoding is dropped);
2. a byte order mark (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE) names the encoding;
3. UTF-8 (strict), which is what almost every transcript is (and what ASCII is too);
4. otherwise charset-normalizer detects the encoding (Windows-1252, Latin-1, Windows-1250,
   Big5, GB2312, Shift JIS, UTF-16 without BOM, ...).

Bytes no encoding reads are refused with a :class:`TranscriptError` that names the encoding(s)
tried and, for UTF-8 and an explicit encoding, the line of the first bad byte. Nothing is ever
decoded "with replacement": a wrong character would silently stop quotes from matching.
"""

from __future__ import annotations

import codecs

from videojobs.errors import Problem, TranscriptError
from videojobs.models.spec import is_text_codec

_BOMS: tuple[tuple[bytes, str], ...] = (
    # UTF-32 before UTF-16: the UTF-32 LE BOM starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

_DETECT_SAMPLE = 512 * 1024
"""Bytes charset-normalizer looks at when detecting (it samples within them); the whole
document is then decoded with the encoding found, strictly."""


def _bom(data: bytes) -> tuple[str, int] | None:
    for mark, name in _BOMS:
        if data.startswith(mark):
            return name, len(mark)
    return None


def _where(data: bytes, exc: UnicodeDecodeError, skip: int = 0) -> str:
    """The first bad byte(s) and their line (counted in newline bytes before them)."""
    bad = data[skip + exc.start : skip + min(exc.end, exc.start + 4)]
    line = data.count(b"\n", 0, skip + exc.start) + 1
    return f"byte{'s' if len(bad) > 1 else ''} {bad.hex(' ')} at line {line} ({exc.reason})"


def decode_transcript(
    data: bytes, encoding: str | None = None, *, source: str = "transcript"
) -> str:
    """Decode a transcript's bytes (see the module docstring).

    Raises:
        TranscriptError: the bytes are not text in ``encoding`` / in any encoding detected,
            naming what was tried.
    """

    def refuse(message: str) -> TranscriptError:
        return TranscriptError(Problem(source, message))

    if encoding:
        if not is_text_codec(encoding):
            raise refuse(f"unknown text encoding {encoding!r} (transcript.encoding)")
        codec = codecs.lookup(encoding).name
        skip = 0
        bom = _bom(data)
        if bom is not None and codecs.lookup(bom[0]).name == codec:
            skip = bom[1]
        elif bom is not None and codec in ("utf-16", "utf-32", "utf-8-sig"):
            skip = 0  # these read their own BOM
        try:
            text = data[skip:].decode(codec)
        except UnicodeDecodeError as exc:
            raise refuse(
                # a codec name Python knows (looked up above), unquoted: the redaction of errors
                # about fetched documents removes quoted text, and this is the spec's, not theirs
                f"cannot decode the transcript as {encoding} (transcript.encoding): "
                f"{_where(data, exc, skip)}; fix the file or transcript.encoding"
            ) from None
        return text.removeprefix("\ufeff")
    bom = _bom(data)
    if bom is not None:
        name, skip = bom
        try:
            return data[skip:].decode(name)
        except UnicodeDecodeError as exc:
            raise refuse(
                f"the transcript starts with a {name.upper()} byte order mark but is not "
                f"{name.upper()}: {_where(data, exc, skip)}; fix the file or set "
                "transcript.encoding"
            ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        not_utf8 = _where(data, exc)
    found = _detect(data)
    if found is None:
        raise refuse(
            f"cannot decode the transcript: it is not UTF-8 ({not_utf8}), and charset-normalizer "
            "found no other encoding that reads it as text (it tries the encodings Python "
            "knows: Windows-125x, ISO-8859-x, Big5, GB18030, Shift JIS, EUC, KOI8, UTF-16/32, "
            "...); convert it to UTF-8 or set transcript.encoding"
        )
    try:
        return data.decode(found)
    except UnicodeDecodeError as exc:  # detected on a sample; the rest does not fit
        raise refuse(
            f"cannot decode the transcript: it is not UTF-8 ({not_utf8}), and it is not "
            f"{found} either, which charset-normalizer detected ({_where(data, exc)}); "
            "convert it to UTF-8 or set transcript.encoding"
        ) from None


def _detect(data: bytes) -> str | None:
    """The encoding charset-normalizer finds most likely, or None."""
    from charset_normalizer import from_bytes

    sample = data
    if len(data) > _DETECT_SAMPLE:  # whole lines (a cut multi-byte character reads as an error)
        sample = data[: data.rfind(b"\n", 0, _DETECT_SAMPLE) + 1] or data[:_DETECT_SAMPLE]
    matches = list(from_bytes(sample))
    if not matches:
        return None
    best = matches[0]
    # charset-normalizer orders equals by name: on a tie, the encoding most used for subtitles
    # wins (French text reads the same in Windows-1250, -1252 and -1257 when it has only the
    # letters they share)
    tied = [
        m.encoding
        for m in matches
        if abs(m.chaos - best.chaos) < 1e-3 and abs(m.coherence - best.coherence) < 1e-3
    ]
    return min(tied, key=lambda name: _COMMON.get(name, len(_COMMON)))


_COMMON = {
    name: rank
    for rank, name in enumerate(
        (
            "utf_8", "cp1252", "cp1250", "cp1251", "gb18030", "big5", "cp932", "cp949",
            "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258", "latin_1",
        )
    )
}  # fmt: skip
