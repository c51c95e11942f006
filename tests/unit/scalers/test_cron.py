"""Cron windows: the KEDA example, midnight, DST in two zones, boundaries, names, validation."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from scalers import (
    ConfigError,
    CronConfig,
    CronScaler,
    FakeClock,
    MetricCache,
    ScalerContext,
    SessionPool,
    TriggerPolicy,
    TriggerSpec,
)

SEOUL = {
    "timezone": "Asia/Seoul",
    "start": "00,15,30,45 * * * *",
    "end": "05,20,35,50 * * * *",
    "desiredReplicas": "1",
}


def config(timezone: str, start: str, end: str, desired: str = "3") -> CronConfig:
    metadata = {"timezone": timezone, "start": start, "end": end, "desiredReplicas": desired}
    return CronConfig.parse(TriggerSpec("cron", metadata))


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def scaler(metadata: dict[str, str], clock: FakeClock) -> CronScaler:
    context = ScalerContext(clock=clock, sessions=SessionPool())
    return CronScaler.from_spec(TriggerSpec("cron", metadata), context=context)


async def test_seoul_example_is_active_for_five_minutes_every_quarter_hour(
    clock: FakeClock,
) -> None:
    cron = scaler(SEOUL, clock)
    clock.set(utc(2026, 5, 1, 15, 0))  # 00:00 in Seoul, a day boundary too
    seen = []
    for _minute in range(60):
        for _half in range(2):
            measurement = await cron.measure()
            seen.append((measurement.active, measurement.value))
            assert measurement.at == clock.now()
            clock.advance(30)
    active_minutes = [i // 2 for i, (active, _) in enumerate(seen) if active and i % 2 == 0]
    assert active_minutes == [
        0,
        1,
        2,
        3,
        4,
        15,
        16,
        17,
        18,
        19,
        30,
        31,
        32,
        33,
        34,
        45,
        46,
        47,
        48,
        49,
    ]
    assert {value for active, value in seen if active} == {1.0}
    assert {value for active, value in seen if not active} == {0.0}
    # Both half-minutes of a minute agree.
    assert all(seen[i] == seen[i + 1] for i in range(0, 120, 2))


async def test_target_and_activation_target(clock: FakeClock) -> None:
    cron = scaler(SEOUL, clock)
    assert cron.target == 1.0
    assert cron.activation_target == 0.0


def test_seoul_metric_name_is_kedas_lowercased() -> None:
    context = ScalerContext(clock=FakeClock(), sessions=SessionPool())
    cron = CronScaler.from_spec(TriggerSpec("cron", SEOUL), context=context)
    assert cron.metric_name == "cron-asia-seoul-00cm15cm30cm45xxxx-05cm20cm35cm50xxxx"


def test_long_metric_name_is_a_dns_label_and_stable() -> None:
    context = ScalerContext(clock=FakeClock(), sessions=SessionPool())
    metadata = {
        "timezone": "America/Argentina/ComodRivadavia",
        "start": "0,5,10,15,20,25 0-3,8-11 1-7,15-21 1-6 1-5",
        "end": "30,35,40,45,50,55 0-3,8-11 1-7,15-21 1-6 1-5",
        "desiredReplicas": "2",
    }
    first = CronScaler.from_spec(TriggerSpec("cron", metadata), context=context).metric_name
    again = CronScaler.from_spec(TriggerSpec("cron", dict(metadata)), context=context).metric_name
    assert first == again
    assert len(first) <= 58
    assert re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", first)


@pytest.mark.parametrize(
    ("local", "active"),
    [
        ((21, 59), False),
        ((22, 0), True),
        ((23, 59), True),
        ((0, 0), True),
        ((5, 59), True),
        ((6, 0), False),
        ((12, 0), False),
    ],
)
def test_window_crossing_midnight(local: tuple[int, int], active: bool) -> None:
    cron = config("Europe/Berlin", "0 22 * * *", "0 6 * * *")
    # 2026-05-01 is CEST, UTC+2.
    when = datetime(2026, 5, 1, *local, tzinfo=cron.zone)
    assert cron.is_active(when) is active


def test_start_minute_is_active_end_minute_is_not() -> None:
    cron = config("Etc/UTC", "10 * * * *", "20 * * * *")
    assert cron.is_active(utc(2026, 5, 1, 12, 9, 59)) is False
    assert cron.is_active(utc(2026, 5, 1, 12, 10)) is True
    assert cron.is_active(utc(2026, 5, 1, 12, 19, 59)) is True
    assert cron.is_active(utc(2026, 5, 1, 12, 20)) is False


def active_minutes_utc(cron: CronConfig, start: datetime, minutes: int) -> list[str]:
    """The UTC minutes (HH:MM) in which the window is open."""
    return [
        f"{(start + timedelta(minutes=m)):%H:%M}"
        for m in range(minutes)
        if cron.is_active(start + timedelta(minutes=m))
    ]


# America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST.
# Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET.


@pytest.mark.parametrize(
    ("timezone", "day", "opens_utc", "closes_utc"),
    [
        ("America/New_York", (2026, 3, 7), (14, 0), (22, 0)),  # EST, UTC-5
        ("America/New_York", (2026, 3, 8), (13, 0), (21, 0)),  # EDT from 02:00 local
        ("America/New_York", (2026, 10, 31), (13, 0), (21, 0)),  # EDT
        ("America/New_York", (2026, 11, 1), (14, 0), (22, 0)),  # EST from 02:00 local
        ("Europe/Berlin", (2026, 3, 28), (8, 0), (16, 0)),  # CET, UTC+1
        ("Europe/Berlin", (2026, 3, 29), (7, 0), (15, 0)),  # CEST, UTC+2
        ("Europe/Berlin", (2026, 10, 24), (7, 0), (15, 0)),
        ("Europe/Berlin", (2026, 10, 25), (8, 0), (16, 0)),
    ],
)
def test_working_hours_follow_local_time_across_dst(
    timezone: str,
    day: tuple[int, int, int],
    opens_utc: tuple[int, int],
    closes_utc: tuple[int, int],
) -> None:
    cron = config(timezone, "0 9 * * *", "0 17 * * *")
    opens = utc(*day, *opens_utc)
    closes = utc(*day, *closes_utc)
    assert cron.is_active(opens - timedelta(minutes=1)) is False
    assert cron.is_active(opens) is True
    assert cron.is_active(closes - timedelta(minutes=1)) is True
    assert cron.is_active(closes) is False


def test_spring_forward_window_inside_the_missing_hour_is_skipped() -> None:
    cron = config("America/New_York", "30 2 * * *", "45 2 * * *")
    # 2026-03-08 01:00 EST (06:00 UTC) to 04:00 EDT (08:00 UTC): 02:30 local never happens.
    assert active_minutes_utc(cron, utc(2026, 3, 8, 6, 0), 120) == []
    # The next day it opens at 02:30 EDT = 06:30 UTC.
    assert active_minutes_utc(cron, utc(2026, 3, 9, 6, 0), 60)[0] == "06:30"
    assert len(active_minutes_utc(cron, utc(2026, 3, 9, 6, 0), 60)) == 15


def test_spring_forward_window_spanning_the_missing_hour_opens_at_the_jump() -> None:
    cron = config("Europe/Berlin", "30 2 * * *", "0 4 * * *")
    # 2026-03-29 01:00 UTC is 02:00 CET -> 03:00 CEST; open from then until 04:00 CEST (02:00 UTC).
    assert active_minutes_utc(cron, utc(2026, 3, 29, 0, 0), 180) == [
        f"{h:02}:{m:02}" for h, m in [(1, m) for m in range(60)]
    ]


def test_fall_back_window_in_the_repeated_hour_opens_on_both_passes() -> None:
    cron = config("America/New_York", "0 1 * * *", "30 1 * * *")
    # 01:00-01:30 EDT = 05:00-05:30 UTC, then 01:00-01:30 EST = 06:00-06:30 UTC.
    minutes = active_minutes_utc(cron, utc(2026, 11, 1, 4, 0), 240)
    assert minutes == [f"05:{m:02}" for m in range(30)] + [f"06:{m:02}" for m in range(30)]


def test_fall_back_in_berlin_repeated_hour() -> None:
    cron = config("Europe/Berlin", "15 2 * * *", "45 2 * * *")
    # 02:15-02:45 CEST = 00:15-00:45 UTC, then 02:15-02:45 CET = 01:15-01:45 UTC.
    minutes = active_minutes_utc(cron, utc(2026, 10, 24, 23, 0), 240)
    assert minutes == [f"00:{m:02}" for m in range(15, 45)] + [f"01:{m:02}" for m in range(15, 45)]


# -- validation ------------------------------------------------------------------------------


def reject(metadata: dict[str, str], auth: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        CronConfig.parse(TriggerSpec("cron", metadata, auth or {}))
    return caught.value


@pytest.mark.parametrize("key", ["timezone", "start", "end", "desiredReplicas"])
def test_every_key_is_required(key: str) -> None:
    metadata = dict(SEOUL)
    del metadata[key]
    error = reject(metadata)
    assert (error.key, error.value) == (key, None)
    assert str(error).startswith(f"{key}: missing, expected ")


def test_unknown_timezone() -> None:
    error = reject({**SEOUL, "timezone": "Mars/Olympus_Mons"})
    assert (error.key, error.value) == ("timezone", "Mars/Olympus_Mons")
    assert "IANA" in error.expected


@pytest.mark.parametrize("key", ["start", "end"])
def test_six_fields_are_rejected(key: str) -> None:
    error = reject({**SEOUL, key: "0 */5 * * * *"})
    assert (error.key, error.value) == (key, "0 */5 * * * *")
    assert "got 6 fields" in error.expected


def test_descriptors_are_rejected() -> None:
    error = reject({**SEOUL, "start": "@daily"})
    assert (error.key, error.value) == ("start", "@daily")
    assert "descriptors like @daily are not" in error.expected


@pytest.mark.parametrize("schedule", ["61 * * * *", "a b c d e", "*/0 * * * *", "0 0 31 2 *"])
def test_invalid_or_never_firing_schedules_are_rejected(schedule: str) -> None:
    error = reject({**SEOUL, "end": schedule})
    assert (error.key, error.value) == ("end", schedule)
    assert error.expected.startswith("a 5-field cron schedule")


def test_start_equal_to_end_is_rejected_even_with_other_spacing() -> None:
    error = reject({**SEOUL, "start": "0 * * * *", "end": "0  *  * * *"})
    assert (error.key, error.value) == ("end", "0  *  * * *")
    assert error.expected == "a schedule different from start"


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "one", "", "99999999999999999999"])
def test_desired_replicas_must_be_a_positive_integer(value: str) -> None:
    error = reject({**SEOUL, "desiredReplicas": value})
    assert error.key == "desiredReplicas"
    assert error.expected == "a positive integer"


def test_unknown_key_is_named() -> None:
    error = reject({**SEOUL, "useCachedMetrics": "true"})
    assert (error.key, error.value) == ("useCachedMetrics", "true")
    assert "desiredReplicas" in error.expected


def test_ignored_keys_are_accepted() -> None:
    spec = TriggerSpec("cron", {**SEOUL, "scalerAddress": "updraft:9090"})
    CronConfig.parse(spec, ignore={"scalerAddress"})
    with pytest.raises(ConfigError):
        CronConfig.parse(spec)


def test_auth_is_rejected_without_showing_it() -> None:
    error = reject(SEOUL, {"password": "hunter2"})
    assert (error.key, error.value) == ("password", "<redacted>")
    assert "hunter2" not in str(error)


# -- edges through the cache: a cron value never outlives the next start or end ---------------

WINDOW = {"timezone": "UTC", "start": "0 13 * * *", "end": "30 13 * * *", "desiredReplicas": "4"}


async def ask_through_cache(clock: FakeClock, steps: list[float]) -> list[bool]:
    """`active` as the shared cache answers it, at each offset (seconds) from now, with KEDA's
    default 30 s polling interval."""
    cache = MetricCache(clock=clock, metrics_registry=CollectorRegistry())
    seen = []
    try:
        for step in steps:
            clock.advance(step)
            seen.append((await cache.get(TriggerSpec("cron", WINDOW), TriggerPolicy())).active)
    finally:
        await cache.close()
    return seen


async def test_the_cache_opens_a_cron_window_at_its_start_not_one_interval_later(
    clock: FakeClock,
) -> None:
    clock.set(utc(2026, 5, 1, 12, 59, 50))
    # 12:59:50 closed; 13:00:01 open (11 s later: inside the 30 s polling interval).
    assert await ask_through_cache(clock, [0, 11]) == [False, True]


async def test_the_cache_closes_a_cron_window_at_its_end(clock: FakeClock) -> None:
    clock.set(utc(2026, 5, 1, 13, 29, 55))
    assert await ask_through_cache(clock, [0, 6, 10]) == [True, False, False]


async def test_a_cron_measurement_is_valid_until_the_next_edge(clock: FakeClock) -> None:
    cron = scaler({**WINDOW, "timezone": "Europe/Berlin"}, clock)
    clock.set(utc(2026, 5, 2, 10, 0))  # 12:00 in Berlin (CEST, +2): next start 13:00
    measurement = await cron.measure()
    assert measurement.valid_until == utc(2026, 5, 2, 11, 0)
    clock.set(utc(2026, 5, 2, 11, 10))  # 13:10 local: inside, next end 13:30
    assert (await cron.measure()).valid_until == utc(2026, 5, 2, 11, 30)
