"""Time values: parsing and formatting of timestamps and durations.

Every time in videojobs is a number of seconds (a ``float`` rounded to the millisecond). Users may
write it as:

- plain seconds: ``65``, ``"65"``, ``"65.5"``;
- clock forms: ``"HH:MM:SS"``, ``"HH:MM:SS.mmm"``, ``"MM:SS"``, ``"MM:SS.mmm"``, with a comma or a
  dot before the milliseconds (the WebVTT and SRT forms);
- short durations: ``"3s"``, ``"1m30s"``, ``"1h2m"``, ``"500ms"``.

Floats are deliberately not accepted in manifests (Kubernetes' ``int-or-string`` type has no
floats); write fractional seconds as a string.
"""

from __future__ import annotations

import math
import re

_CLOCK = re.compile(r"^(?:(?P<h>\d+):)?(?P<m>\d{1,2}):(?P<s>\d{1,2})(?:[.,](?P<f>\d{1,9}))?$")
_SECONDS = re.compile(r"^\d+(?:\.\d+)?$")
_DURATION = re.compile(
    r"^(?=\d)(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m(?!s))?"
    r"(?:(?P<s>\d+(?:\.\d+)?)s)?(?:(?P<ms>\d+)ms)?$"
)

TIME_FORMS = "HH:MM:SS(.mmm), MM:SS(.mmm), seconds such as 65 or '65.5', or a duration like 1m30s"


class TimeValueError(ValueError):
    """A value that is not a time; the message says what was expected."""


def round_ms(seconds: float) -> float:
    """Round to the millisecond, the precision of every time in videojobs."""
    return round(seconds + 0.0, 3)


def parse_time(value: object) -> float:
    """Parse a timestamp or duration into seconds.

    Raises:
        TimeValueError: when ``value`` is none of the accepted forms, or is negative.
    """
    if isinstance(value, bool):
        raise TimeValueError(f"invalid time {value!r}: expected {TIME_FORMS}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise TimeValueError(f"invalid time {value!r}: must be a finite number >= 0")
        return round_ms(float(value))
    if not isinstance(value, str):
        raise TimeValueError(f"invalid time {value!r}: expected {TIME_FORMS}")
    text = value.strip()
    if _SECONDS.match(text):
        return round_ms(float(text))
    clock = _CLOCK.match(text)
    if clock:
        hours = int(clock["h"] or 0)
        minutes, seconds = int(clock["m"]), int(clock["s"])
        if minutes >= 60 or seconds >= 60:
            raise TimeValueError(f"invalid time {value!r}: minutes and seconds must be below 60")
        fraction = float("0." + clock["f"]) if clock["f"] else 0.0
        return round_ms(hours * 3600 + minutes * 60 + seconds + fraction)
    duration = _DURATION.match(text)
    if duration and any(duration.groupdict().values()):
        parts = duration.groupdict()
        total = (
            float(parts["h"] or 0) * 3600
            + float(parts["m"] or 0) * 60
            + float(parts["s"] or 0)
            + float(parts["ms"] or 0) / 1000
        )
        return round_ms(total)
    raise TimeValueError(f"invalid time {value!r}: expected {TIME_FORMS}")


def format_timestamp(seconds: float, *, separator: str = ".") -> str:
    """Format seconds as ``HH:MM:SS.mmm`` (``separator=','`` gives the SRT form)."""
    total_ms = round(seconds * 1000)
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def format_duration(seconds: float) -> str:
    """Format seconds for people: ``1m30.5s``, ``3s``, ``2h0m5s``."""
    total_ms = round(seconds * 1000)
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = rest / 1000
    sec_text = f"{secs:g}s"
    if hours:
        return f"{hours}h{minutes}m{sec_text}"
    if minutes:
        return f"{minutes}m{sec_text}"
    return sec_text
