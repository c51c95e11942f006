"""The Prometheus scaler and MetricCache against a real Prometheus 2.x on loopback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from scalers import (
    BadResponseError,
    BadResultError,
    FakeClock,
    Fallback,
    MetricCache,
    SessionPool,
    TriggerPolicy,
    TriggerSpec,
    UnavailableError,
)
from tests.integration.conftest import QUEUE_DEPTH, wait_prometheus
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration


def trigger(server: ServerProcess | str, query: str, **extra: str) -> TriggerSpec:
    address = server if isinstance(server, str) else f"http://127.0.0.1:{server.port}"
    return TriggerSpec(
        "prometheus", {"serverAddress": address, "query": query, "threshold": "10", **extra}
    )


@pytest.fixture
async def cache() -> AsyncIterator[MetricCache]:
    cache = MetricCache(metrics_registry=CollectorRegistry())
    yield cache
    await cache.close()


async def test_vector(cache: MetricCache, prometheus: ServerProcess) -> None:
    measurement = await cache.get(trigger(prometheus, "updraft_it_queue_depth"))
    assert (measurement.value, measurement.active) == (QUEUE_DEPTH, True)


async def test_activation_threshold(cache: MetricCache, prometheus: ServerProcess) -> None:
    spec = trigger(prometheus, "updraft_it_queue_depth", activationThreshold="42")
    assert (await cache.get(spec)).active is False


async def test_scalar(cache: MetricCache, prometheus: ServerProcess) -> None:
    spec = trigger(prometheus, "scalar(updraft_it_queue_depth) * 2")
    assert (await cache.get(spec)).value == 2 * QUEUE_DEPTH


async def test_empty_vector_is_zero_or_an_error(
    cache: MetricCache, prometheus: ServerProcess
) -> None:
    assert (await cache.get(trigger(prometheus, "updraft_it_absent"))).value == 0.0
    spec = trigger(prometheus, "updraft_it_absent", ignoreNullValues="false")
    with pytest.raises(BadResultError, match="returned an empty vector"):
        await cache.get(spec)


async def test_nan_is_zero_or_an_error(cache: MetricCache, prometheus: ServerProcess) -> None:
    measurement = await cache.get(trigger(prometheus, "updraft_it_nan"))
    assert (measurement.value, measurement.active) == (0.0, False)
    spec = trigger(prometheus, "updraft_it_nan", ignoreNullValues="false")
    with pytest.raises(BadResultError, match="returned nan and ignoreNullValues is false"):
        await cache.get(spec)


async def test_several_series_are_an_error(cache: MetricCache, prometheus: ServerProcess) -> None:
    with pytest.raises(BadResultError, match="returned 2 series; expected exactly one"):
        await cache.get(trigger(prometheus, "updraft_it_multi"))
    assert (await cache.get(trigger(prometheus, "sum(updraft_it_multi)"))).value == 3.0


async def test_bad_query_carries_prometheus_message(
    cache: MetricCache, prometheus: ServerProcess
) -> None:
    with pytest.raises(BadResponseError) as caught:
        await cache.get(trigger(prometheus, "sum(updraft_it_multi"))
    assert caught.value.status == 400
    assert "HTTP 400: bad_data: " in str(caught.value)
    assert "parse error" in str(caught.value)


async def test_triggers_on_one_server_share_one_session(prometheus: ServerProcess) -> None:
    pool = SessionPool()
    cache = MetricCache(metrics_registry=CollectorRegistry(), sessions=pool)
    try:
        await cache.get(trigger(prometheus, "updraft_it_queue_depth"))
        await cache.get(trigger(prometheus, "sum(updraft_it_multi)"))
        assert len(cache) == 2
        assert len(pool) == 1
        assert await cache.evict_idle() == 0
    finally:
        await cache.close()
    assert len(pool) == 1 - 1  # the last scaler closing released the session
    await pool.close()


async def test_killed_prometheus_stale_then_fallback_then_recovery(
    own_prometheus: ServerProcess,
) -> None:
    clock = FakeClock()
    metrics = CollectorRegistry()
    cache = MetricCache(clock=clock, metrics_registry=metrics)
    policy = TriggerPolicy(
        polling_interval=10, staleness_bound=300, fallback=Fallback(failure_threshold=3, value=9)
    )
    spec = trigger(own_prometheus, "updraft_it_queue_depth")
    try:
        good = await cache.get(spec, policy)
        assert good.value == QUEUE_DEPTH
        own_prometheus.kill()
        for _ in range(2):
            clock.advance(10)
            assert await cache.get(spec, policy) is good
        clock.advance(10)
        fallback = await cache.get(spec, policy)
        assert (fallback.value, fallback.active) == (9.0, True)  # 9 > activationThreshold 0
        labels = {"type": "prometheus", "error": "UnavailableError"}
        assert metrics.get_sample_value("updraft_scaler_upstream_errors_total", labels) == 3
        own_prometheus.start()
        await asyncio.to_thread(wait_prometheus, own_prometheus)
        clock.advance(10)
        recovered = await cache.get(spec, policy)
        assert (recovered.value, recovered.active) == (QUEUE_DEPTH, True)
    finally:
        await cache.close()


async def test_unreachable_server_without_fallback_raises_unavailable(
    cache: MetricCache,
) -> None:
    from tests.servers import free_port

    spec = trigger(f"http://127.0.0.1:{free_port()}", "up")
    with pytest.raises(UnavailableError, match="unreachable"):
        await cache.get(spec)


# -- what we send: checked against a recording HTTP server -----------------------------------


class Recorder:
    def __init__(self) -> None:
        self.requests: list[web.Request] = []
        self.hang = asyncio.Event()
        self.reply: web.Response = web.json_response(
            {"status": "success", "data": {"resultType": "scalar", "result": [0, "5"]}}
        )

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(request)
        if request.query.get("query") == "hang":
            await self.hang.wait()
        return self.reply


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[Recorder, str]]:
    recorder = Recorder()
    app = web.Application()
    app.router.add_get("/prefix/api/v1/query", recorder.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield recorder, f"http://127.0.0.1:{port}/prefix"
    recorder.hang.set()
    await runner.cleanup()


async def test_request_carries_params_headers_and_auth(
    cache: MetricCache, recorder: tuple[Recorder, str]
) -> None:
    server, address = recorder
    spec = TriggerSpec(
        "prometheus",
        {
            "serverAddress": address,
            "query": 'sum(rate(x{a="b"}[1m]))',
            "threshold": "1",
            "namespace": "team-a",
            "queryParameters": "dedup=false",
            "customHeaders": "X-Scope-OrgID=acme",
            "authModes": "bearer",
        },
        {"bearerToken": "tok-123"},
    )
    assert (await cache.get(spec)).value == 5.0
    (request,) = server.requests
    assert list(request.query.items()) == [
        ("query", 'sum(rate(x{a="b"}[1m]))'),
        ("namespace", "team-a"),
        ("dedup", "false"),
    ]
    assert request.headers["X-Scope-OrgID"] == "acme"
    assert request.headers["Authorization"] == "Bearer tok-123"


async def test_timeout_and_no_secret_in_errors_or_logs(
    cache: MetricCache, recorder: tuple[Recorder, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, address = recorder
    spec = TriggerSpec(
        "prometheus",
        {"serverAddress": address, "query": "hang", "threshold": "1", "timeout": "100ms"},
        {"authModes": "basic", "username": "me", "password": "pw-s3cret"},
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(UnavailableError) as caught:
        await cache.get(spec)
    assert "no answer within 0.1s" in str(caught.value)
    for text in (str(caught.value), repr(caught.value), caplog.text, repr(spec)):
        assert "pw-s3cret" not in text
        assert "bWU6cHctczNjcmV0" not in text  # base64 of me:pw-s3cret


async def test_non_2xx_without_json(cache: MetricCache, recorder: tuple[Recorder, str]) -> None:
    server, address = recorder
    server.reply = web.Response(status=502, text="upstream connect error")
    with pytest.raises(BadResponseError, match="HTTP 502: upstream connect error"):
        await cache.get(trigger(address, "up"))
