"""What only the ``redis`` and ``redis-streams`` scalers do, against a real Redis 7 on loopback."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from prometheus_client import CollectorRegistry

from scalers import (
    BadResultError,
    MetricCache,
    ScalerContext,
    SessionPool,
    SystemClock,
    TriggerSpec,
    UnavailableError,
)
from scalers.clients import client_pool
from tests.integration.queues.servers import REDIS_PASSWORD
from tests.servers import ServerProcess, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def client(redis_server: ServerProcess) -> Iterator[redis.Redis]:
    client = redis.Redis(port=redis_server.port, password=REDIS_PASSWORD)
    yield client
    client.close()


@pytest.fixture
async def cache() -> AsyncIterator[MetricCache]:
    cache = MetricCache(metrics_registry=CollectorRegistry())
    yield cache
    await cache.close()


def key() -> str:
    return f"k-{uuid.uuid4().hex[:12]}"


def list_spec(server: ServerProcess, name: str, **metadata: str) -> TriggerSpec:
    address = {"host": "127.0.0.1", "port": str(server.port)}
    return TriggerSpec(
        "redis", {**address, "listName": name, **metadata}, {"password": REDIS_PASSWORD}
    )


def stream_spec(server: ServerProcess, name: str, **metadata: str) -> TriggerSpec:
    address = {"address": f"127.0.0.1:{server.port}"}
    return TriggerSpec(
        "redis-streams", {**address, "stream": name, **metadata}, {"password": REDIS_PASSWORD}
    )


async def test_depth_by_key_type(
    cache: MetricCache, client: redis.Redis, redis_server: ServerProcess
) -> None:
    names = {kind: key() for kind in ("list", "zset", "set", "hash")}
    client.rpush(names["list"], "a", "b")
    client.zadd(names["zset"], {"a": 1, "b": 2, "c": 3})
    client.sadd(names["set"], "a", "b", "c", "d")
    client.hset(names["hash"], mapping={"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"})
    depths = {
        kind: (await cache.get(list_spec(redis_server, name))).value for kind, name in names.items()
    }
    assert depths == {"list": 2.0, "zset": 3.0, "set": 4.0, "hash": 5.0}


async def test_other_key_types_are_an_error_naming_the_type(
    cache: MetricCache, client: redis.Redis, redis_server: ServerProcess
) -> None:
    name = key()
    client.set(name, "not a queue")
    with pytest.raises(BadResultError) as caught:
        await cache.get(list_spec(redis_server, name))
    assert f"key {name!r}: is a string; expected a list, set, sorted set or hash" in str(
        caught.value
    )


async def test_database_index(cache: MetricCache, redis_server: ServerProcess) -> None:
    name = key()
    other = redis.Redis(port=redis_server.port, password=REDIS_PASSWORD, db=3)
    try:
        other.rpush(name, "a", "b", "c")
        assert (await cache.get(list_spec(redis_server, name))).value == 0.0
        spec = list_spec(redis_server, name, databaseIndex="3")
        assert (await cache.get(spec)).value == 3.0
    finally:
        other.close()


async def test_scalers_with_equal_settings_share_one_client(redis_server: ServerProcess) -> None:
    sessions = SessionPool()
    cache = MetricCache(metrics_registry=CollectorRegistry(), sessions=sessions)
    pool = client_pool(ScalerContext(clock=SystemClock(), sessions=sessions))
    try:
        await cache.get(list_spec(redis_server, key()))
        await cache.get(list_spec(redis_server, key()))
        await cache.get(stream_spec(redis_server, key()))
        assert len(pool) == 1
        await cache.get(list_spec(redis_server, key(), databaseIndex="1"))
        assert len(pool) == 2
    finally:
        await cache.close()
    assert len(pool) == 0  # the last scaler to close closed the client
    await sessions.close()


async def test_unreachable_server(cache: MetricCache) -> None:
    spec = TriggerSpec("redis", {"address": f"127.0.0.1:{free_port()}", "listName": "q"})
    with pytest.raises(UnavailableError, match=r"redis 127\.0\.0\.1:\d+/0 key 'q': unreachable"):
        await cache.get(spec)


# -- streams ---------------------------------------------------------------------------------


async def test_stream_length_without_group(
    cache: MetricCache, client: redis.Redis, redis_server: ServerProcess
) -> None:
    name = key()
    assert (await cache.get(stream_spec(redis_server, name))).value == 0.0  # missing stream
    for i in range(6):
        client.xadd(name, {"n": str(i)})
    measurement = await cache.get(stream_spec(redis_server, name, activationLagCount="5"))
    assert (measurement.value, measurement.active) == (6.0, True)
    scaler = cache.scaler_for(stream_spec(redis_server, name, streamLength="20"))
    assert scaler.target == 20.0


async def test_stream_pending_entries_and_lag(
    cache: MetricCache, client: redis.Redis, redis_server: ServerProcess
) -> None:
    name = key()
    for i in range(10):
        client.xadd(name, {"n": str(i)}, id=f"{i + 1}-0")
    client.xgroup_create(name, "g", id="0")
    client.xreadgroup("g", "c1", {name: ">"}, count=4)  # 4 delivered, 6 never read
    client.xack(name, "g", "1-0")
    pending = stream_spec(redis_server, name, consumerGroup="g", pendingEntriesCount="7")
    lag = stream_spec(redis_server, name, consumerGroup="g", lagCount="2")
    assert (await cache.get(pending)).value == 3.0
    assert cache.scaler_for(pending).target == 7.0
    assert (await cache.get(lag)).value == 6.0
    assert cache.scaler_for(lag).target == 2.0


async def test_stream_missing_group_is_the_stream_length(
    cache: MetricCache, client: redis.Redis, redis_server: ServerProcess
) -> None:
    name = key()
    for i in range(3):
        client.xadd(name, {"n": str(i)})
    for extra in ({}, {"lagCount": "5"}):
        spec = stream_spec(redis_server, name, consumerGroup="absent", **extra)
        assert (await cache.get(spec)).value == 3.0


async def test_stream_key_of_another_type(
    cache: MetricCache, client: redis.Redis, redis_server: ServerProcess
) -> None:
    name = key()
    client.rpush(name, "a")
    with pytest.raises(BadResultError, match="is a list; expected a stream"):
        await cache.get(stream_spec(redis_server, name))
