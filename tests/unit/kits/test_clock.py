"""The one clock and the one RFC 3339 format every package takes time through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from kits.clock import Clock, FakeClock, SystemClock, format_rfc3339, parse_rfc3339


def test_a_fake_clock_moves_wall_and_monotonic_time_together() -> None:
    clock = FakeClock(datetime(2026, 3, 1, tzinfo=UTC), monotonic=5.0)
    clock.advance(1.5)
    assert clock.now() == datetime(2026, 3, 1, 0, 0, 1, 500000, tzinfo=UTC)
    assert clock.monotonic() == 6.5
    clock.set(datetime(2026, 3, 1, 1, tzinfo=UTC))
    assert clock.monotonic() == 3605.0
    with pytest.raises(ValueError, match="go back"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="aware"):
        FakeClock(datetime(2026, 1, 1))


def test_the_system_clock_is_aware_utc_and_monotonic() -> None:
    clock: Clock = SystemClock()
    assert clock.now().tzinfo is UTC
    first = clock.monotonic()
    assert clock.monotonic() >= first


@pytest.mark.parametrize(
    ("moment", "micro", "text"),
    [
        (datetime(2024, 5, 29, 8, 38, 20, 123456, tzinfo=UTC), False, "2024-05-29T08:38:20Z"),
        (datetime(2024, 5, 29, 8, 38, 20, 123456, tzinfo=UTC), True, "2024-05-29T08:38:20.123456Z"),
        (
            datetime(2024, 5, 29, 10, 38, 20, tzinfo=timezone(timedelta(hours=2))),
            False,
            "2024-05-29T08:38:20Z",
        ),
        (datetime(2024, 1, 1), False, "2024-01-01T00:00:00Z"),  # naive is taken as UTC
    ],
)
def test_format(moment: datetime, micro: bool, text: str) -> None:
    assert format_rfc3339(moment, micro=micro) == text


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2024-05-29T08:38:20Z", datetime(2024, 5, 29, 8, 38, 20, tzinfo=UTC)),
        ("2024-05-29t08:38:20z", datetime(2024, 5, 29, 8, 38, 20, tzinfo=UTC)),
        ("2024-05-29T08:38:20.5Z", datetime(2024, 5, 29, 8, 38, 20, 500000, tzinfo=UTC)),
        ("2024-05-29T10:38:20+02:00", datetime(2024, 5, 29, 8, 38, 20, tzinfo=UTC)),
    ],
)
def test_parse(text: str, moment: datetime) -> None:
    parsed = parse_rfc3339(text)
    assert parsed == moment
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2024-05-29",
        "2024-05-29T08:38:20",
        "2024-05-29 08:38:20Z",
        "20240529T083820Z",
        "2024-13-01T00:00:00Z",
    ],
)
def test_parse_refuses_what_is_not_rfc3339(text: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_rfc3339(text)


def test_format_then_parse_round_trips_to_the_microsecond() -> None:
    moment = datetime(2026, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)
    assert parse_rfc3339(format_rfc3339(moment, micro=True)) == moment
