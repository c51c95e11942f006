"""What only the ``aws-sqs-queue`` scaler does, against moto in server mode on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from scalers import AuthError, BadResponseError, MetricCache, TriggerSpec
from tests.integration.queues.backends import SqsBackend
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture
async def cache() -> AsyncIterator[MetricCache]:
    cache = MetricCache(metrics_registry=CollectorRegistry())
    yield cache
    await cache.close()


@pytest.fixture
async def sqs(moto_server: ServerProcess) -> AsyncIterator[SqsBackend]:
    backend = SqsBackend(moto_server)
    await backend.prepare()
    yield backend
    await backend.close()


async def test_in_flight_and_delayed_messages(cache: MetricCache, sqs: SqsBackend) -> None:
    queue = await sqs.new_queue()
    url = sqs.urls[queue]
    await sqs.fill(queue, 5)
    received = await sqs.client.receive_message(
        QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=300
    )
    assert len(received["Messages"]) == 2
    for i in range(3):
        await sqs.client.send_message(QueueUrl=url, MessageBody=f"later-{i}", DelaySeconds=600)
    depths = {}
    for in_flight, delayed in (("true", "false"), ("false", "false"), ("true", "true")):
        spec = sqs.spec(queue, scaleOnInFlight=in_flight, scaleOnDelayed=delayed)
        depths[in_flight, delayed] = (await cache.get(spec)).value
    assert depths == {("true", "false"): 5.0, ("false", "false"): 3.0, ("true", "true"): 8.0}


async def test_bare_queue_name_is_resolved(cache: MetricCache, sqs: SqsBackend) -> None:
    queue = await sqs.new_queue()
    await sqs.fill(queue, 2)
    spec = sqs.spec(queue, queueURL=queue)
    assert (await cache.get(spec)).value == 2.0


async def test_missing_queue(cache: MetricCache, sqs: SqsBackend) -> None:
    spec = sqs.spec("absent", queueURL="absent")
    with pytest.raises(BadResponseError, match=r"sqs queue 'absent' in eu-west-1 .*does not exist"):
        await cache.get(spec)


def refused_spec(moto_iam_server: ServerProcess, **auth: str) -> TriggerSpec:
    return TriggerSpec(
        "aws-sqs-queue",
        {
            "queueURL": "http://127.0.0.1/123456789012/q",
            "awsRegion": "eu-west-1",
            "awsEndpoint": f"http://127.0.0.1:{moto_iam_server.port}",
        },
        {"awsAccessKeyID": "AKIDUNKNOWN", "awsSecretAccessKey": "not-the-key", **auth},
    )


async def test_refused_key_message(cache: MetricCache, moto_iam_server: ServerProcess) -> None:
    with pytest.raises(AuthError) as caught:
        await cache.get(refused_spec(moto_iam_server))
    assert str(caught.value).endswith("credentials refused: InvalidClientTokenId (HTTP 403)")


async def test_short_credentials_do_not_blank_out_the_message(
    cache: MetricCache, moto_iam_server: ServerProcess
) -> None:
    # Credentials that are also words of the message: only a credential standing as a value
    # (a header's, a query parameter's) is one; "sqs", the region and the queue name stay.
    spec = refused_spec(moto_iam_server, awsSecretAccessKey="sqs", awsSessionToken="eu")
    with pytest.raises(AuthError) as caught:
        await cache.get(spec)
    message = str(caught.value)
    assert message.startswith("sqs queue 'q' in eu-west-1 at http://127.0.0.1:"), message
    assert message.endswith("credentials refused: InvalidClientTokenId (HTTP 403)"), message
