"""What only the ``nats-jetstream`` scaler does, against a real nats-server with JetStream."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from scalers import BadResultError, MetricCache
from tests.integration.queues.backends import NatsBackend, NatsMonitoringBackend
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture
async def cache() -> AsyncIterator[MetricCache]:
    cache = MetricCache(metrics_registry=CollectorRegistry())
    yield cache
    await cache.close()


@pytest.fixture(params=["client", "monitoring"])
async def nats_backend(
    request: pytest.FixtureRequest, nats_server: ServerProcess
) -> AsyncIterator[NatsBackend]:
    kind = NatsBackend if request.param == "client" else NatsMonitoringBackend
    backend = kind(nats_server)
    await backend.prepare()
    yield backend
    await backend.close()


async def test_lag_counts_pending_and_unacknowledged(
    cache: MetricCache, nats_backend: NatsBackend
) -> None:
    queue = await nats_backend.new_queue()
    await nats_backend.fill(queue, 6)
    js = nats_backend.client.jetstream()
    subscription = await js.pull_subscribe(f"{queue}.>", durable="workers", stream=queue)
    delivered = await subscription.fetch(3, timeout=5)
    # ack_sync waits for the server to confirm, so the monitoring view already counts it.
    await delivered[0].ack_sync()  # 1 acked, 2 delivered and unacked, 3 never delivered
    await nats_backend.client.flush()
    await subscription.unsubscribe()
    assert (await cache.get(nats_backend.spec(queue))).value == 5.0


async def test_missing_consumer_and_stream_are_named(
    cache: MetricCache, nats_backend: NatsBackend
) -> None:
    queue = await nats_backend.new_queue()
    with pytest.raises(BadResultError, match="not found"):
        await cache.get(nats_backend.spec(queue, consumer="absent"))
    with pytest.raises(BadResultError, match="not found"):
        await cache.get(nats_backend.spec("absent-stream"))


async def test_monitoring_names_what_is_missing(
    cache: MetricCache, nats_server: ServerProcess
) -> None:
    backend = NatsMonitoringBackend(nats_server)
    await backend.prepare()
    try:
        queue = await backend.new_queue()
        cases = {
            "consumer 'absent' not found in stream": backend.spec(queue, consumer="absent"),
            "stream 'absent-stream' not found in account '$G'": backend.spec("absent-stream"),
            "account 'other' not found": backend.spec(queue, account="other"),
        }
        for message, spec in cases.items():
            with pytest.raises(BadResultError) as caught:
                await cache.get(spec)
            assert message in str(caught.value)
    finally:
        await backend.close()
