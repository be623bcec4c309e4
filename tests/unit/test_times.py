"""Time values: every accepted form, and clear errors for the rest."""

from __future__ import annotations

import pytest

from videojobs.times import TimeValueError, format_duration, format_timestamp, parse_time


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (65, 65.0),
        ("65", 65.0),
        ("65.5", 65.5),
        ("01:05", 65.0),
        ("1:05.250", 65.25),
        ("00:01:05", 65.0),
        ("00:01:05.123", 65.123),
        ("00:01:05,123", 65.123),
        ("1:00:00", 3600.0),
        ("100:00:00", 360000.0),
        ("3s", 3.0),
        ("1m30s", 90.0),
        ("1h2m", 3720.0),
        ("500ms", 0.5),
        ("1m", 60.0),
        (" 42 ", 42.0),
        ("0.0004", 0.0),
        ("0.0005", 0.001),
    ],
)
def test_accepted_forms(value: object, seconds: float) -> None:
    assert parse_time(value) == seconds


@pytest.mark.parametrize(
    "value",
    ["", "abc", "1:2:3:4", "00:61:00", "00:00:61", "-5", -1, "1h-2m", "5 s", True, None, [], "m"],
)
def test_rejected_forms_name_the_value(value: object) -> None:
    with pytest.raises(TimeValueError) as info:
        parse_time(value)
    assert repr(value) in str(info.value)


def test_format_timestamp_round_trips() -> None:
    for seconds in (0.0, 0.001, 59.999, 65.5, 3599.999, 86400.25):
        text = format_timestamp(seconds)
        assert parse_time(text) == seconds
        assert parse_time(format_timestamp(seconds, separator=",")) == seconds


def test_format_duration() -> None:
    assert format_duration(3) == "3s"
    assert format_duration(90.5) == "1m30.5s"
    assert format_duration(3725) == "1h2m5s"
