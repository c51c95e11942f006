"""MetricCache semantics against a scripted upstream and a fake clock: no sockets, no sleeping."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import tracemalloc
from collections.abc import AsyncIterator, Collection

import pytest
from prometheus_client import CollectorRegistry

from scalers import (
    BadResultError,
    CacheSettings,
    ConfigError,
    FakeClock,
    Fallback,
    Measurement,
    MetadataReader,
    MetricCache,
    Registry,
    Scaler,
    ScalerContext,
    TriggerPolicy,
    TriggerSpec,
    UnavailableError,
    UpstreamError,
)

POLICY = TriggerPolicy(polling_interval=10.0, staleness_bound=45.0)


class Upstream:
    """What the scripted scalers measure: a value or an error, optionally held at a gate."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.value = 1.0
        self.error: Exception | None = None
        self.gate: asyncio.Event | None = None
        self.calls = 0
        self.built: list[str] = []
        self.closed: list[str] = []
        self.closed_count = 0
        self.record = True
        self.timeout = 5.0

    def registry(self) -> Registry:
        upstream = self

        class ScriptedScaler(Scaler):
            type_name = "scripted"

            def __init__(self, name: str) -> None:
                self.name = name
                self.target = 1.0
                self.activation_target = 2.0
                self.metric_name = f"scripted-{name}"
                self.timeout = upstream.timeout
                if upstream.record:
                    upstream.built.append(name)

            @classmethod
            def validate(cls, spec: TriggerSpec, *, ignore: Collection[str] = ()) -> None:
                reader = MetadataReader(spec.metadata, ignore=ignore)
                reader.required_str("name")
                reader.reject_unknown()

            @classmethod
            def from_spec(
                cls, spec: TriggerSpec, *, context: ScalerContext, ignore: Collection[str] = ()
            ) -> Scaler:
                cls.validate(spec, ignore=ignore)
                return cls(spec.metadata["name"])

            async def measure(self) -> Measurement:
                upstream.calls += 1
                if upstream.gate is not None:
                    await upstream.gate.wait()
                if upstream.error is not None:
                    raise upstream.error
                value = upstream.value
                return Measurement(value=value, active=value > 2.0, at=upstream.clock.now())

            async def close(self) -> None:
                upstream.closed_count += 1
                if upstream.record:
                    upstream.closed.append(self.name)

        return Registry([ScriptedScaler])


def spec(name: str = "a", **auth: str) -> TriggerSpec:
    return TriggerSpec("scripted", {"name": name}, auth)


@pytest.fixture
def upstream(clock: FakeClock) -> Upstream:
    return Upstream(clock)


@pytest.fixture
def metrics() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def cache(
    upstream: Upstream, clock: FakeClock, metrics: CollectorRegistry
) -> AsyncIterator[MetricCache]:
    cache = MetricCache(registry=upstream.registry(), clock=clock, metrics_registry=metrics)
    yield cache
    await cache.close()


def sample(metrics: CollectorRegistry, name: str, **labels: str) -> float:
    value = metrics.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


# -- freshness -------------------------------------------------------------------------------


async def test_fresh_for_the_polling_interval(
    cache: MetricCache, upstream: Upstream, clock: FakeClock, metrics: CollectorRegistry
) -> None:
    first = await cache.get(spec(), POLICY)
    assert (first.value, first.active, first.at) == (1.0, False, clock.now())
    upstream.value = 5.0
    clock.advance(9.999)
    assert await cache.get(spec(), POLICY) is first
    assert upstream.calls == 1
    clock.advance(0.001)
    second = await cache.get(spec(), POLICY)
    assert (second.value, second.active) == (5.0, True)
    assert upstream.calls == 2
    assert sample(metrics, "updraft_scaler_cache_hits_total", type="scripted") == 1
    assert sample(metrics, "updraft_scaler_cache_misses_total", type="scripted") == 2
    assert sample(metrics, "updraft_scaler_upstream_calls_total", type="scripted") == 2
    assert sample(metrics, "updraft_scaler_upstream_latency_seconds_count", type="scripted") == 2


async def test_default_polling_interval_is_30s(
    cache: MetricCache, upstream: Upstream, clock: FakeClock
) -> None:
    await cache.get(spec())
    clock.advance(29.9)
    await cache.get(spec())
    assert upstream.calls == 1
    clock.advance(0.1)
    await cache.get(spec())
    assert upstream.calls == 2


async def test_equal_specs_share_one_scaler_and_auth_separates(
    cache: MetricCache, upstream: Upstream
) -> None:
    one = cache.scaler_for(TriggerSpec("scripted", {"name": "a"}, {"token": "x"}))
    two = cache.scaler_for(TriggerSpec("scripted", dict({"name": "a"}), {"token": "x"}))
    three = cache.scaler_for(TriggerSpec("scripted", {"name": "a"}, {"token": "y"}))
    assert one is two
    assert one is not three
    assert upstream.built == ["a", "a"]
    assert len(cache) == 2


async def test_config_errors_are_raised_and_not_cached(cache: MetricCache) -> None:
    with pytest.raises(ConfigError) as caught:
        await cache.get(TriggerSpec("scripted", {"name": "a", "extra": "1"}))
    assert caught.value.key == "extra"
    with pytest.raises(ConfigError) as unknown:
        await cache.get(TriggerSpec("nope", {}))
    assert unknown.value.key == "type"
    assert len(cache) == 0


async def test_ignored_keys_reach_every_scaler(
    upstream: Upstream, clock: FakeClock, metrics: CollectorRegistry
) -> None:
    cache = MetricCache(
        registry=upstream.registry(),
        clock=clock,
        metrics_registry=metrics,
        ignore={"scalerAddress"},
    )
    try:
        measurement = await cache.get(TriggerSpec("scripted", {"name": "a", "scalerAddress": "x"}))
        assert measurement.value == 1.0
    finally:
        await cache.close()


# -- single-flight ---------------------------------------------------------------------------


async def test_100_concurrent_askers_cause_one_upstream_call(
    cache: MetricCache, upstream: Upstream, metrics: CollectorRegistry
) -> None:
    upstream.gate = asyncio.Event()
    upstream.value = 3.0
    askers = [asyncio.create_task(cache.get(spec(), POLICY)) for _ in range(100)]
    await settle()
    assert upstream.calls == 1
    upstream.gate.set()
    results = await asyncio.gather(*askers)
    assert upstream.calls == 1
    assert {m.value for m in results} == {3.0}
    assert len({id(m) for m in results}) == 1
    assert sample(metrics, "updraft_scaler_cache_misses_total", type="scripted") == 100
    assert sample(metrics, "updraft_scaler_upstream_calls_total", type="scripted") == 1


async def test_100_concurrent_askers_of_a_stale_key_cause_one_call(
    cache: MetricCache, upstream: Upstream, clock: FakeClock
) -> None:
    await cache.get(spec(), POLICY)
    clock.advance(10)
    upstream.gate = asyncio.Event()
    upstream.value = 4.0
    askers = [asyncio.create_task(cache.get(spec(), POLICY)) for _ in range(100)]
    await settle()
    upstream.gate.set()
    assert {m.value for m in await asyncio.gather(*askers)} == {4.0}
    assert upstream.calls == 2


async def test_a_cancelled_asker_does_not_cancel_the_call_for_others(
    cache: MetricCache, upstream: Upstream
) -> None:
    upstream.gate = asyncio.Event()
    first = asyncio.create_task(cache.get(spec(), POLICY))
    second = asyncio.create_task(cache.get(spec(), POLICY))
    await settle()
    first.cancel()
    await settle()
    upstream.gate.set()
    assert (await second).value == 1.0
    assert first.cancelled()
    assert upstream.calls == 1


async def test_caller_budget_without_a_value_raises_unavailable_and_the_call_goes_on(
    cache: MetricCache, upstream: Upstream
) -> None:
    upstream.gate = asyncio.Event()
    with pytest.raises(UnavailableError, match=r"no answer within 0\.01s"):
        await cache.get(spec(), POLICY, budget=0.01)
    upstream.value = 6.0
    upstream.gate.set()
    await settle()
    assert (await cache.get(spec(), POLICY)).value == 6.0
    assert upstream.calls == 1


async def test_caller_budget_serves_the_stale_value(
    cache: MetricCache, upstream: Upstream, clock: FakeClock
) -> None:
    first = await cache.get(spec(), POLICY)
    clock.advance(10)
    upstream.gate = asyncio.Event()
    assert await cache.get(spec(), POLICY, budget=0.01) is first
    upstream.gate.set()
    await settle()


async def test_a_hung_upstream_is_abandoned_after_the_scaler_timeout(
    upstream: Upstream, clock: FakeClock, metrics: CollectorRegistry
) -> None:
    upstream.timeout = 0.01
    upstream.gate = asyncio.Event()  # never set
    cache = MetricCache(
        registry=upstream.registry(),
        clock=clock,
        metrics_registry=metrics,
        settings=CacheSettings(upstream_grace=0.0),
    )
    try:
        with pytest.raises(UnavailableError, match=r"scripted-a: no answer within 0\.01s"):
            await cache.get(spec(), POLICY)
        labels = {"type": "scripted", "error": "UnavailableError"}
        assert sample(metrics, "updraft_scaler_upstream_errors_total", **labels) == 1
    finally:
        await cache.close()


# -- failures, staleness, fallback -------------------------------------------------------


async def test_stale_on_error_until_the_staleness_bound(
    cache: MetricCache, upstream: Upstream, clock: FakeClock, metrics: CollectorRegistry
) -> None:
    good = await cache.get(spec(), POLICY)
    upstream.error = BadResultError("boom")
    for _ in range(4):  # t = 10, 20, 30, 40: within 45 s of the good value
        clock.advance(10)
        assert await cache.get(spec(), POLICY) is good
    clock.advance(10)  # t = 50
    with pytest.raises(BadResultError, match="boom"):
        await cache.get(spec(), POLICY)
    assert upstream.calls == 6
    assert sample(metrics, "updraft_scaler_cache_stale_served_total", type="scripted") == 4
    labels = {"type": "scripted", "error": "BadResultError"}
    assert sample(metrics, "updraft_scaler_upstream_errors_total", **labels) == 5


async def test_a_failure_is_also_fresh_for_an_interval(
    cache: MetricCache, upstream: Upstream, clock: FakeClock
) -> None:
    upstream.error = UnavailableError("down")
    for _ in range(3):
        with pytest.raises(UnavailableError):
            await cache.get(spec(), POLICY)
    assert upstream.calls == 1
    clock.advance(10)
    with pytest.raises(UnavailableError):
        await cache.get(spec(), POLICY)
    assert upstream.calls == 2


async def test_fallback_value_after_threshold_then_recovery(
    cache: MetricCache, upstream: Upstream, clock: FakeClock, metrics: CollectorRegistry
) -> None:
    policy = TriggerPolicy(
        polling_interval=10, staleness_bound=300, fallback=Fallback(failure_threshold=3, value=7)
    )
    good = await cache.get(spec(), policy)
    upstream.error = UnavailableError("connection refused")
    clock.advance(10)
    assert await cache.get(spec(), policy) is good  # failure 1: stale
    clock.advance(10)
    assert await cache.get(spec(), policy) is good  # failure 2: stale
    clock.advance(10)
    fallback = await cache.get(spec(), policy)  # failure 3: fallback, though stale is young
    assert (fallback.value, fallback.active, fallback.at) == (7.0, True, clock.now())
    assert (await cache.get(spec(), policy)).value == 7.0  # still within the interval
    assert upstream.calls == 4
    assert sample(metrics, "updraft_scaler_cache_fallbacks_total", type="scripted") == 2
    upstream.error = None
    upstream.value = 2.0
    clock.advance(10)
    recovered = await cache.get(spec(), policy)
    assert (recovered.value, recovered.active) == (2.0, False)
    upstream.error = UnavailableError("down again")
    clock.advance(10)
    assert await cache.get(spec(), policy) is recovered  # the count started over


async def test_unreachable_upstream_with_no_value_yet_reaches_fallback(
    cache: MetricCache, upstream: Upstream, clock: FakeClock
) -> None:
    policy = TriggerPolicy(polling_interval=10, fallback=Fallback(failure_threshold=2, value=0.5))
    upstream.error = UnavailableError("connection refused")
    with pytest.raises(UnavailableError, match="connection refused"):
        await cache.get(spec(), policy)
    clock.advance(10)
    fallback = await cache.get(spec(), policy)
    assert (fallback.value, fallback.active) == (0.5, False)


async def test_fallback_without_value_serves_the_error(
    cache: MetricCache, upstream: Upstream, clock: FakeClock
) -> None:
    policy = TriggerPolicy(polling_interval=10, staleness_bound=300, fallback=Fallback(2))
    await cache.get(spec(), policy)
    upstream.error = BadResultError("3 series")
    clock.advance(10)
    assert (await cache.get(spec(), policy)).value == 1.0
    clock.advance(10)
    with pytest.raises(BadResultError, match="3 series"):
        await cache.get(spec(), policy)


async def test_each_asker_gets_its_own_policy_on_shared_state(
    cache: MetricCache, upstream: Upstream, clock: FakeClock
) -> None:
    with_fallback = TriggerPolicy(polling_interval=10, fallback=Fallback(1, value=9))
    upstream.error = UnavailableError("down")
    with pytest.raises(UnavailableError):
        await cache.get(spec(), POLICY)
    assert (await cache.get(spec(), with_fallback)).value == 9.0
    assert upstream.calls == 1


async def test_scaler_bugs_become_upstream_errors_without_their_text(
    cache: MetricCache, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.error = KeyError("password=hunter2")
    with (
        caplog.at_level(logging.WARNING, logger="scalers.cache"),
        pytest.raises(UpstreamError) as caught,
    ):
        await cache.get(spec(), POLICY)
    assert str(caught.value) == "scripted-a: scaler failed: KeyError"
    assert "hunter2" not in caplog.text
    assert "KeyError" in caplog.text


async def test_failures_are_logged_once_per_call(
    cache: MetricCache, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.error = UnavailableError("cannot connect")
    with caplog.at_level(logging.WARNING, logger="scalers.cache"):
        for _ in range(3):
            with pytest.raises(UnavailableError):
                await cache.get(spec(), POLICY)
    assert [r.getMessage() for r in caplog.records] == [
        "upstream call failed (1 in a row): cannot connect"
    ]


# -- eviction --------------------------------------------------------------------------------


async def test_idle_keys_are_evicted_and_their_scalers_closed(
    cache: MetricCache, upstream: Upstream, clock: FakeClock, metrics: CollectorRegistry
) -> None:
    await cache.get(spec("a"), POLICY)
    await cache.get(spec("b"), POLICY)
    clock.advance(60)
    await cache.get(spec("b"), POLICY)
    clock.advance(41)  # a: idle 101 s > 10 intervals; b: 41 s
    assert await cache.evict_idle() == 1
    assert upstream.closed == ["a"]
    assert len(cache) == 1
    assert sample(metrics, "updraft_scaler_cache_evictions_total", reason="idle") == 1
    assert sample(metrics, "updraft_scaler_cache_keys") == 1
    await cache.get(spec("a"), POLICY)  # comes back with a new scaler
    assert upstream.built == ["a", "b", "a"]


async def test_a_key_with_a_call_in_flight_is_not_evicted(
    cache: MetricCache, upstream: Upstream, clock: FakeClock
) -> None:
    upstream.gate = asyncio.Event()
    asker = asyncio.create_task(cache.get(spec(), POLICY))
    await settle()
    clock.advance(1000)
    assert await cache.evict_idle() == 0
    upstream.gate.set()
    await asker


async def test_capacity_evicts_the_least_recently_asked(
    upstream: Upstream, clock: FakeClock, metrics: CollectorRegistry
) -> None:
    cache = MetricCache(
        registry=upstream.registry(),
        clock=clock,
        metrics_registry=metrics,
        settings=CacheSettings(max_keys=3),
    )
    try:
        for name in "abc":
            await cache.get(spec(name), POLICY)
        await cache.get(spec("a"), POLICY)
        await cache.get(spec("d"), POLICY)
        await cache.get(spec("e"), POLICY)
        await settle()
        assert upstream.closed == ["b", "c"]
        assert len(cache) == 3
        assert sample(metrics, "updraft_scaler_cache_evictions_total", reason="capacity") == 2
    finally:
        await cache.close()
    assert sorted(upstream.closed) == ["a", "b", "c", "d", "e"]


async def test_memory_stays_bounded_at_10000_keys(
    upstream: Upstream, clock: FakeClock, metrics: CollectorRegistry
) -> None:
    upstream.record = False
    cache = MetricCache(registry=upstream.registry(), clock=clock, metrics_registry=metrics)

    async def ask_new_keys(phase: int) -> int:
        for i in range(phase * 10_000, (phase + 1) * 10_000):
            await cache.get(spec(f"k{i}"), POLICY)
        await settle()
        gc.collect()
        return tracemalloc.get_traced_memory()[0]

    gc.collect()
    tracemalloc.start()
    try:
        full = await ask_new_keys(0)
        churned = await ask_new_keys(1)  # tables reach their steady size here
        churned_again = await ask_new_keys(2)
        assert len(cache) == 10_000
    finally:
        tracemalloc.stop()
        await cache.close()
    assert upstream.closed_count == 30_000
    assert full / 10_000 < 2048  # bytes per key, everything included
    assert churned - full < 0.1 * full
    assert abs(churned_again - churned) < 0.01 * full


# -- lifecycle -------------------------------------------------------------------------------


async def test_start_and_close(
    upstream: Upstream, clock: FakeClock, metrics: CollectorRegistry
) -> None:
    cache = MetricCache(registry=upstream.registry(), clock=clock, metrics_registry=metrics)
    await cache.start()
    upstream.gate = asyncio.Event()
    asker = asyncio.create_task(cache.get(spec(), POLICY))
    await settle()
    await cache.close()
    assert upstream.closed == ["a"]
    with pytest.raises(asyncio.CancelledError):
        await asker
    with pytest.raises(RuntimeError, match="closed"):
        await cache.get(spec(), POLICY)
    await cache.close()  # idempotent


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="polling_interval"):
        TriggerPolicy(polling_interval=0)
    with pytest.raises(ValueError, match="failure_threshold"):
        Fallback(failure_threshold=0)


async def test_the_fallback_is_logged_once_when_it_starts_and_once_when_it_ends(
    cache: MetricCache, upstream: Upstream, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    policy = TriggerPolicy(polling_interval=10, fallback=Fallback(failure_threshold=2, value=0))
    upstream.error = UnavailableError("connection refused")
    with caplog.at_level(logging.INFO, logger="scalers.cache"):
        for _ in range(5):  # two failed queries, then the fallback for three intervals
            with contextlib.suppress(UnavailableError):
                for _ in range(3):  # many askers within one interval
                    await cache.get(spec(), policy)
            clock.advance(10)
        upstream.error = None
        await cache.get(spec(), policy)
        await cache.get(spec(), policy)
    said = [r.getMessage() for r in caplog.records if "fallback" in r.getMessage()]
    assert said == [
        "serving the fallback value 0 after 2 failed queries in a row",
        "the upstream answers again: the fallback value is no longer served",
    ]
