"""What only the ``rabbitmq`` scaler does, against a real RabbitMQ with its management plugin."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aio_pika
import pytest
from prometheus_client import CollectorRegistry

from scalers import (
    BadResponseError,
    BadResultError,
    ConfigError,
    MetricCache,
    TriggerSpec,
    default_registry,
)
from tests.integration.queues.backends import RabbitMQBackend, RabbitMQHttpBackend
from tests.integration.queues.servers import RABBITMQ_PASSWORD, RABBITMQ_USER
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture
async def cache() -> AsyncIterator[MetricCache]:
    cache = MetricCache(metrics_registry=CollectorRegistry())
    yield cache
    await cache.close()


@pytest.fixture
def http(rabbitmq_server: ServerProcess) -> RabbitMQHttpBackend:
    return RabbitMQHttpBackend(rabbitmq_server)


async def test_regex_operations(cache: MetricCache, http: RabbitMQHttpBackend) -> None:
    prefix = http.new_name()
    queues = []
    for depth in (1, 2, 6):
        queue = f"{prefix}-{depth}"
        await http.new_queue_named(queue)
        await RabbitMQBackend.fill(http, queue, depth)  # without waiting for the stats
        queues.append(queue)
    for queue in queues:
        http.wait_for_stats(queue)
    values = {}
    for operation in ("sum", "avg", "max"):
        spec = http.spec(f"^{prefix}-", useRegex="true", operation=operation)
        values[operation] = (await cache.get(spec)).value
    assert values == {"sum": 9.0, "avg": 3.0, "max": 6.0}
    scaler = cache.scaler_for(http.spec(f"^{prefix}-", useRegex="true"))
    assert scaler.metric_name == f"rabbitmq--5e{prefix}"  # URL-escaped (%5E), then DNS-safe


async def test_regex_over_one_page_is_an_error(
    cache: MetricCache, http: RabbitMQHttpBackend
) -> None:
    prefix = http.new_name()
    for i in range(3):
        await http.new_queue_named(f"{prefix}-{i}")
    spec = http.spec(f"^{prefix}-", useRegex="true", pageSize="2")
    with pytest.raises(BadResultError, match="more than one page of 2 queues"):
        await cache.get(spec)


async def test_unacknowledged_messages(
    cache: MetricCache, http: RabbitMQHttpBackend, rabbitmq_server: ServerProcess
) -> None:
    amqp = RabbitMQBackend(rabbitmq_server)
    queue = await http.new_queue()
    await http.fill(queue, 5)
    connection = await aio_pika.connect(amqp.amqp_host(RABBITMQ_PASSWORD))
    try:
        channel = await connection.channel()
        taken = await (await channel.get_queue(queue)).get(no_ack=False)
        assert taken is not None
        http.wait_for_stats(queue, unacknowledged=1)  # messages: 4 ready + 1 unacknowledged
        assert (await cache.get(http.spec(queue))).value == 5.0
        assert (await cache.get(http.spec(queue, excludeUnacknowledged="true"))).value == 4.0
        assert (await cache.get(amqp.spec(queue))).value == 4.0  # AMQP sees ready ones only
    finally:
        await connection.close()


async def test_message_rate_of_an_idle_queue(cache: MetricCache, http: RabbitMQHttpBackend) -> None:
    queue = await http.new_queue()
    measurement = await cache.get(http.spec(queue, mode="MessageRate", value="10"))
    assert (measurement.value, measurement.active) == (0.0, False)


@pytest.mark.parametrize("kind", [RabbitMQBackend, RabbitMQHttpBackend])
async def test_missing_queue(
    cache: MetricCache, rabbitmq_server: ServerProcess, kind: type[RabbitMQBackend]
) -> None:
    backend = kind(rabbitmq_server)
    with pytest.raises(BadResponseError, match=r"queue 'absent': not found"):
        await cache.get(backend.spec("absent"))


async def test_vhost_name_overrides_the_url(cache: MetricCache, http: RabbitMQHttpBackend) -> None:
    queue = await http.new_queue()
    await http.fill(queue, 2)
    spec = http.spec(queue, host=f"{http.http_host()}/other", vhostName="/")
    assert (await cache.get(spec)).value == 2.0
    assert (await cache.get(http.spec(queue, host=f"{http.http_host()}/%2F"))).value == 2.0
    with pytest.raises(BadResponseError, match=r"vhost 'other' queue .*: not found"):
        await cache.get(http.spec(queue, host=f"{http.http_host()}/other"))


@pytest.mark.parametrize(
    ("metadata", "key"),
    [
        ({"protocol": "amqp", "useRegex": "true"}, "useRegex"),
        ({"protocol": "amqp", "mode": "MessageRate"}, "mode"),
        ({"mode": "DeliverGetRate"}, "mode"),
        ({"queueLength": "5"}, "queueLength"),
        ({"protocol": "http"}, "protocol"),
    ],
)
def test_amqp_only_takes_queue_length(
    rabbitmq_server: ServerProcess, metadata: dict[str, str], key: str
) -> None:
    metadata = {
        "queueName": "q",
        "mode": "QueueLength",
        "value": "5",
        "host": f"amqp://127.0.0.1:{rabbitmq_server.ports[0]}",
        **metadata,
    }
    auth = {"username": RABBITMQ_USER, "password": RABBITMQ_PASSWORD}
    with pytest.raises(ConfigError) as caught:
        default_registry().validate(TriggerSpec("rabbitmq", metadata, auth))
    assert caught.value.key == key
