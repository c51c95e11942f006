"""Every queue scaler through the same cases, against its real server on loopback.

Depths are exact; upstream calls are counted with the cache's own counter
(``updraft_scaler_upstream_calls_total``); time is a ``FakeClock``, never a sleep.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from scalers import (
    AuthError,
    ConfigError,
    FakeClock,
    Fallback,
    MetricCache,
    TriggerPolicy,
    TriggerSpec,
    default_registry,
)
from tests.integration.queues.backends import BACKENDS, BAD_PASSWORD, Backend
from tests.integration.queues.servers import stop_server

pytestmark = pytest.mark.integration

POLICY = TriggerPolicy(polling_interval=10, staleness_bound=300)


@pytest.fixture(params=sorted(BACKENDS))
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    kind, server_fixture = BACKENDS[request.param]
    backend = kind(request.getfixturevalue(server_fixture))
    if kind.auth_server_fixture is not None:
        backend.auth_server = request.getfixturevalue(kind.auth_server_fixture)
    await backend.prepare()
    yield backend
    await backend.close()


@pytest.fixture(params=sorted(BACKENDS))
async def private_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """A backend on a server of its own, which the test may stop."""
    kind, _ = BACKENDS[request.param]
    server = kind.start(tmp_path / "server")
    backend = kind(server)
    try:
        await backend.prepare()
        yield backend
        await backend.close()
    finally:
        stop_server(server)


@pytest.fixture
def metrics() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def cache(metrics: CollectorRegistry, clock: FakeClock) -> AsyncIterator[MetricCache]:
    cache = MetricCache(clock=clock, metrics_registry=metrics)
    yield cache
    await cache.close()


def upstream_calls(metrics: CollectorRegistry, backend: Backend) -> float | None:
    labels = {"type": backend.type_name}
    return metrics.get_sample_value("updraft_scaler_upstream_calls_total", labels)


async def test_registered_and_named(backend: Backend, cache: MetricCache) -> None:
    assert backend.type_name in default_registry().types()
    queue = await backend.new_queue()
    scaler = cache.scaler_for(backend.spec(queue))
    assert scaler.metric_name == backend.metric_name(queue)
    assert (scaler.target, scaler.activation_target) == (5.0, 0.0)


async def test_empty_queue(backend: Backend, cache: MetricCache) -> None:
    queue = await backend.new_queue()
    measurement = await cache.get(backend.spec(queue))
    assert (measurement.value, measurement.active) == (0.0, False)


async def test_depth_below_at_and_above_activation(backend: Backend, cache: MetricCache) -> None:
    queue = await backend.new_queue()
    await backend.fill(queue, 3)
    for activation, active in (("4", False), ("3", False), ("2", True)):
        spec = backend.spec(queue, **{backend.activation_key: activation})
        measurement = await cache.get(spec)
        assert (measurement.value, measurement.active) == (3.0, active), activation


async def test_growing_depth_waits_for_the_interval(
    backend: Backend, cache: MetricCache, clock: FakeClock, metrics: CollectorRegistry
) -> None:
    queue = await backend.new_queue()
    spec = backend.spec(queue)
    await backend.fill(queue, 2)
    first = await cache.get(spec, POLICY)
    assert first.value == 2.0
    await backend.fill(queue, 5)
    clock.advance(9.9)
    assert await cache.get(spec, POLICY) is first
    assert upstream_calls(metrics, backend) == 1
    clock.advance(0.1)
    grown = await cache.get(spec, POLICY)
    assert (grown.value, grown.active) == (7.0, True)
    assert upstream_calls(metrics, backend) == 2


async def test_bad_credentials_are_an_auth_error_without_the_secret(
    backend: Backend, cache: MetricCache, caplog: pytest.LogCaptureFixture
) -> None:
    queue = await backend.new_queue()
    spec = backend.bad_auth_spec(queue)
    if spec is None:
        pytest.skip(f"{backend.type_name} through this endpoint takes no credentials")
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as caught:
        await cache.get(spec)
    assert "credentials refused" in str(caught.value)
    for text in (str(caught.value), repr(caught.value), caplog.text, repr(spec)):
        assert BAD_PASSWORD not in text
        assert backend.password not in text


async def test_bad_metadata_names_the_key(backend: Backend) -> None:
    registry = default_registry()
    queue = await backend.new_queue()
    good = backend.spec(queue)
    registry.validate(good)
    missing = dict(good.metadata)
    del missing[backend.required_key]
    bad_specs = {
        backend.required_key: TriggerSpec(good.type, missing, good.auth),
        backend.target_key: backend.spec(queue, **{backend.target_key: "lots"}),
        backend.activation_key: backend.spec(queue, **{backend.activation_key: "-"}),
        "listname": backend.spec(queue, listname="typo"),
    }
    for key, spec in bad_specs.items():
        with pytest.raises(ConfigError) as caught:
            registry.validate(spec)
        assert caught.value.key == key
        assert str(caught.value).startswith(f"{key}: ")


async def test_server_stopped_mid_test_stale_then_fallback(
    private_backend: Backend, cache: MetricCache, clock: FakeClock, metrics: CollectorRegistry
) -> None:
    backend = private_backend
    queue = await backend.new_queue()
    await backend.fill(queue, 4)
    spec = backend.spec(queue)
    policy = TriggerPolicy(
        polling_interval=10, staleness_bound=300, fallback=Fallback(failure_threshold=3, value=9)
    )
    good = await cache.get(spec, policy)
    assert (good.value, good.active) == (4.0, True)
    await backend.close()
    backend.stop_server()
    for _ in range(2):
        clock.advance(10)
        assert await cache.get(spec, policy) is good
    clock.advance(10)
    fallback = await cache.get(spec, policy)
    assert (fallback.value, fallback.active) == (9.0, True)
    labels = {"type": backend.type_name, "error": "UnavailableError"}
    assert metrics.get_sample_value("updraft_scaler_upstream_errors_total", labels) == 3
    assert upstream_calls(metrics, backend) == 4
