"""The one Go-duration parser every package reads durations with."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kits.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("3s", 3.0),
        ("1m30s", 90.0),
        ("1.5h", 5400.0),
        ("720h", 2_592_000.0),
        ("250us", 0.00025),
        ("0s", 0.0),
        (" 2m ", 120.0),
        # Go's time.ParseDuration also takes a leading sign and "0" alone.
        ("0", 0.0),
        ("+5s", 5.0),
        ("+0", 0.0),
        ("-0", 0.0),
        ("-0s", 0.0),
        ("+1h30m", 5400.0),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "5",
        "1d",
        "-1s",
        "1s2",
        "s",
        "1 s",
        "Never",
        "1e3s",
        "+",
        "-",
        "+5",
        "00",
        "+-5s",
        "\u0661s",
    ],
)
def test_not_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@given(st.text(max_size=20))
def test_any_text_is_a_duration_or_a_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        assert parse_duration(text) >= 0


def test_negative_durations_are_refused_by_name() -> None:
    # Go would return -5s; no caller here has a use for a negative duration.
    with pytest.raises(ValueError, match="negative"):
        parse_duration("-5s")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (1.0, "1s"),
        (10.0, "10s"),
        (15.0, "15s"),
        (900.0, "15m"),
        (5400.0, "1h30m"),
        (0.5, "500ms"),
        (90.25, "1m30s250ms"),
        (7200.0, "2h"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


@given(st.integers(min_value=0, max_value=10**9))
def test_formatted_durations_read_back_to_the_millisecond(millis: int) -> None:
    assert parse_duration(format_duration(millis / 1000)) == pytest.approx(millis / 1000)
