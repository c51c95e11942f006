"""One ``Backend`` per queue scaler: how to build its trigger and fill its queue on a real server.

The generic tests (``test_depth.py``) run every backend through the same cases; each backend's
own tests cover what only it has. ``fill`` talks to the server with an ordinary client (or its
HTTP API), never through the scaler under test.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import asyncpg
import nats
import redis
from aiobotocore.session import get_session
from nats.aio.client import Client as NatsClient

from scalers import TriggerSpec
from tests.integration.queues.servers import (
    NATS_PASSWORD,
    NATS_USER,
    POSTGRES_PASSWORD,
    POSTGRES_USER,
    RABBITMQ_PASSWORD,
    RABBITMQ_USER,
    REDIS_PASSWORD,
    rabbitmq_api,
    start_moto,
    start_nats,
    start_postgres,
    start_rabbitmq,
    start_redis,
    stop_server,
)
from tests.servers import ServerProcess

if TYPE_CHECKING:
    from types_aiobotocore_sqs.client import SQSClient

__all__ = ["BACKENDS", "BAD_PASSWORD", "Backend"]

BAD_PASSWORD = "wrong-pw-s3cret"


class Backend(ABC):
    """A real server and the way one scaler type measures a queue on it."""

    type_name: ClassVar[str]
    target_key: ClassVar[str]
    activation_key: ClassVar[str]
    required_key: ClassVar[str]
    """Removing it from ``spec()``'s metadata is a ``ConfigError`` naming it."""
    password: ClassVar[str]
    """The secret ``spec()`` carries; no error or log line may show it."""

    auth_server_fixture: ClassVar[str | None] = None
    """A second server ``bad_auth_spec`` points at, when the first cannot check credentials."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.auth_server: ServerProcess | None = None

    @staticmethod
    @abstractmethod
    def start(directory: Path) -> ServerProcess:
        """A private server for this backend (the session one comes from a fixture)."""

    async def prepare(self) -> None:  # noqa: B027 - most backends need nothing
        """Once per backend object, before any queue is made."""

    async def close(self) -> None:  # noqa: B027 - most backends hold nothing
        """Release the test's own clients; idempotent."""

    def stop_server(self) -> None:
        """Make the server vanish mid-test, the way a crashed one does."""
        self.server.kill()

    def new_name(self) -> str:
        return f"q-{uuid.uuid4().hex[:12]}"

    async def new_queue(self) -> str:
        """A fresh, empty queue's name."""
        return self.new_name()

    @abstractmethod
    def spec(self, queue: str, **metadata: str) -> TriggerSpec:
        """A valid trigger for ``queue`` with target 5 and working credentials."""

    @abstractmethod
    def bad_auth_spec(self, queue: str) -> TriggerSpec | None:
        """``spec(queue)`` with ``BAD_PASSWORD``; ``None`` when the upstream takes none."""

    @abstractmethod
    async def fill(self, queue: str, count: int) -> None:
        """Add ``count`` messages that the scaler counts."""

    @abstractmethod
    def metric_name(self, queue: str) -> str:
        """The metric name the scaler should give ``spec(queue)``."""


# -- Redis -----------------------------------------------------------------------------------


class _RedisBackend(Backend):
    password = REDIS_PASSWORD

    def __init__(self, server: ServerProcess) -> None:
        super().__init__(server)
        self.client = redis.Redis(port=server.port, password=REDIS_PASSWORD)

    @staticmethod
    def start(directory: Path) -> ServerProcess:
        return start_redis(directory, name="redis-private")

    async def close(self) -> None:
        self.client.close()

    def connection(self, password: str = REDIS_PASSWORD) -> tuple[dict[str, str], dict[str, str]]:
        return {"address": f"127.0.0.1:{self.server.port}"}, {"password": password}


class RedisListBackend(_RedisBackend):
    type_name = "redis"
    target_key = "listLength"
    activation_key = "activationListLength"
    required_key = "listName"

    def spec(self, queue: str, **metadata: str) -> TriggerSpec:
        connection, auth = self.connection()
        return TriggerSpec("redis", {**connection, "listName": queue, **metadata}, auth)

    def bad_auth_spec(self, queue: str) -> TriggerSpec:
        connection, auth = self.connection(BAD_PASSWORD)
        return TriggerSpec("redis", {**connection, "listName": queue}, auth)

    async def fill(self, queue: str, count: int) -> None:
        self.client.rpush(queue, *[f"job-{i}" for i in range(count)])

    def metric_name(self, queue: str) -> str:
        return f"redis-{queue}"


class RedisStreamBackend(_RedisBackend):
    """Pending entries of a consumer group: filled by adding and then reading without ack."""

    type_name = "redis-streams"
    target_key = "pendingEntriesCount"
    activation_key = "activationLagCount"
    required_key = "stream"
    group = "workers"

    async def new_queue(self) -> str:
        name = self.new_name()
        self.client.xgroup_create(name, self.group, id="$", mkstream=True)
        return name

    def spec(self, queue: str, **metadata: str) -> TriggerSpec:
        connection, auth = self.connection()
        metadata = {**connection, "stream": queue, "consumerGroup": self.group, **metadata}
        return TriggerSpec("redis-streams", metadata, auth)

    def bad_auth_spec(self, queue: str) -> TriggerSpec:
        connection, auth = self.connection(BAD_PASSWORD)
        metadata = {**connection, "stream": queue, "consumerGroup": self.group}
        return TriggerSpec("redis-streams", metadata, auth)

    async def fill(self, queue: str, count: int) -> None:
        for i in range(count):
            self.client.xadd(queue, {"job": str(i)})
        self.client.xreadgroup(self.group, "worker-1", {queue: ">"}, count=count)

    def metric_name(self, queue: str) -> str:
        return f"redis-streams-{queue}"


# -- PostgreSQL ------------------------------------------------------------------------------


class PostgresBackend(Backend):
    """Rows of a ``jobs`` table, counted per queue name."""

    type_name = "postgresql"
    target_key = "targetQueryValue"
    activation_key = "activationTargetQueryValue"
    required_key = "query"
    password = POSTGRES_PASSWORD
    _connection: asyncpg.Connection | None = None

    @staticmethod
    def start(directory: Path) -> ServerProcess:
        return start_postgres(directory, name="postgres-private")

    async def prepare(self) -> None:
        self._connection = await asyncpg.connect(
            host="127.0.0.1",
            port=self.server.port,
            user=POSTGRES_USER,
            password=POSTGRES_PASSWORD,
            database="postgres",
        )
        await self._connection.execute(
            "CREATE TABLE IF NOT EXISTS jobs (id serial PRIMARY KEY, queue text NOT NULL)"
        )

    async def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()

    @property
    def connection(self) -> asyncpg.Connection:
        assert self._connection is not None
        return self._connection

    @staticmethod
    def query(queue: str) -> str:
        return f"SELECT count(*) FROM jobs WHERE queue = '{queue}'"

    def spec(self, queue: str, **metadata: str) -> TriggerSpec:
        return TriggerSpec(
            "postgresql",
            {
                "host": "127.0.0.1",
                "port": str(self.server.port),
                "userName": POSTGRES_USER,
                "dbName": "postgres",
                "sslmode": "disable",
                "query": self.query(queue),
                "targetQueryValue": "5",
                **metadata,
            },
            {"password": POSTGRES_PASSWORD},
        )

    def bad_auth_spec(self, queue: str) -> TriggerSpec:
        good = self.spec(queue)
        return TriggerSpec("postgresql", good.metadata, {"password": BAD_PASSWORD})

    async def fill(self, queue: str, count: int) -> None:
        await self.connection.executemany(
            "INSERT INTO jobs (queue) VALUES ($1)", [(queue,)] * count
        )

    def metric_name(self, queue: str) -> str:
        identity = "\x00".join(["127.0.0.1", str(self.server.port), "postgres", self.query(queue)])
        return f"postgresql-{hashlib.sha256(identity.encode()).hexdigest()[:10]}"


# -- SQS (moto) ------------------------------------------------------------------------------


class SqsBackend(Backend):
    """A queue on moto; bad credentials go to a second moto that checks access keys."""

    type_name = "aws-sqs-queue"
    target_key = "queueLength"
    activation_key = "activationQueueLength"
    required_key = "queueURL"
    password = "sqs-secret-key-s3cret"
    auth_server_fixture = "moto_iam_server"
    region = "eu-west-1"

    def __init__(self, server: ServerProcess) -> None:
        super().__init__(server)
        self.urls: dict[str, str] = {}
        self._stack = contextlib.AsyncExitStack()
        self._client: SQSClient | None = None

    async def prepare(self) -> None:
        self._client = await self._stack.enter_async_context(
            get_session().create_client(
                "sqs",
                region_name=self.region,
                endpoint_url=self.endpoint(self.server),
                aws_access_key_id="AKIDTESTING",
                aws_secret_access_key=self.password,
            )
        )

    @property
    def client(self) -> SQSClient:
        assert self._client is not None
        return self._client

    @staticmethod
    def start(directory: Path) -> ServerProcess:
        return start_moto(directory, name="moto-private")

    @staticmethod
    def endpoint(server: ServerProcess) -> str:
        return f"http://127.0.0.1:{server.port}"

    async def close(self) -> None:
        self._client = None
        await self._stack.aclose()

    async def new_queue(self) -> str:
        name = self.new_name()
        self.urls[name] = (await self.client.create_queue(QueueName=name))["QueueUrl"]
        return name

    def spec(self, queue: str, **metadata: str) -> TriggerSpec:
        return TriggerSpec(
            "aws-sqs-queue",
            {
                "queueURL": self.urls.get(queue, queue),
                "awsRegion": self.region,
                "awsEndpoint": self.endpoint(self.server),
                **metadata,
            },
            {"awsAccessKeyID": "AKIDTESTING", "awsSecretAccessKey": self.password},
        )

    def bad_auth_spec(self, queue: str) -> TriggerSpec:
        assert self.auth_server is not None
        metadata = {**self.spec(queue).metadata, "awsEndpoint": self.endpoint(self.auth_server)}
        auth = {"awsAccessKeyID": "AKIDUNKNOWN", "awsSecretAccessKey": BAD_PASSWORD}
        return TriggerSpec("aws-sqs-queue", metadata, auth)

    async def fill(self, queue: str, count: int) -> None:
        for i in range(count):
            await self.client.send_message(QueueUrl=self.urls[queue], MessageBody=f"job-{i}")

    def metric_name(self, queue: str) -> str:
        return f"aws-sqs-{queue}"


# -- NATS JetStream --------------------------------------------------------------------------


class NatsBackend(Backend):
    """One stream per queue with a durable pull consumer; published messages are its lag.
    Measured over a client connection (``natsServerAddress``), which checks credentials."""

    type_name = "nats-jetstream"
    target_key = "lagThreshold"
    activation_key = "activationLagThreshold"
    required_key = "consumer"
    password = NATS_PASSWORD
    consumer = "workers"
    _client: NatsClient | None = None

    @staticmethod
    def start(directory: Path) -> ServerProcess:
        return start_nats(directory, name="nats-private")

    async def prepare(self) -> None:
        self._client = await nats.connect(
            f"nats://127.0.0.1:{self.server.port}", user=NATS_USER, password=NATS_PASSWORD
        )

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    @property
    def client(self) -> NatsClient:
        assert self._client is not None
        return self._client

    async def new_queue(self) -> str:
        name = self.new_name()
        js = self.client.jetstream()
        await js.add_stream(name=name, subjects=[f"{name}.>"])
        await js.add_consumer(name, durable_name=self.consumer, ack_policy="explicit")
        return name

    def connection(self) -> dict[str, str]:
        return {"natsServerAddress": f"nats://127.0.0.1:{self.server.port}"}

    def spec(self, queue: str, **metadata: str) -> TriggerSpec:
        metadata = {
            **self.connection(),
            "stream": queue,
            "consumer": self.consumer,
            "lagThreshold": "5",
            **metadata,
        }
        auth = {"username": NATS_USER, "password": NATS_PASSWORD}
        return TriggerSpec("nats-jetstream", metadata, auth)

    def bad_auth_spec(self, queue: str) -> TriggerSpec | None:
        auth = {"username": NATS_USER, "password": BAD_PASSWORD}
        return TriggerSpec("nats-jetstream", self.spec(queue).metadata, auth)

    async def fill(self, queue: str, count: int) -> None:
        js = self.client.jetstream()
        for i in range(count):
            await js.publish(f"{queue}.jobs", f"job-{i}".encode())

    def metric_name(self, queue: str) -> str:
        return f"nats-jetstream-{queue}"


class NatsMonitoringBackend(NatsBackend):
    """The same streams measured KEDA's way, through ``/jsz`` on the monitoring port (which
    takes no credentials: its bad-credentials case does not apply)."""

    def connection(self) -> dict[str, str]:
        return {
            "natsServerMonitoringEndpoint": f"127.0.0.1:{self.server.ports[1]}",
            "account": "$G",
        }

    def spec(self, queue: str, **metadata: str) -> TriggerSpec:
        metadata = {
            **self.connection(),
            "stream": queue,
            "consumer": self.consumer,
            "lagThreshold": "5",
            **metadata,
        }
        return TriggerSpec("nats-jetstream", metadata)

    def bad_auth_spec(self, queue: str) -> TriggerSpec | None:
        return None


# -- RabbitMQ --------------------------------------------------------------------------------


class RabbitMQBackend(Backend):
    """A durable queue on the default vhost, filled through the management API's publish;
    measured over AMQP with the credentials in the ``host`` URL (in auth)."""

    type_name = "rabbitmq"
    target_key = "value"
    activation_key = "activationValue"
    required_key = "queueName"
    password = RABBITMQ_PASSWORD

    def __init__(self, server: ServerProcess) -> None:
        super().__init__(server)
        self.counts: dict[str, int] = {}

    @staticmethod
    def start(directory: Path) -> ServerProcess:
        return start_rabbitmq(directory, name="rabbitmq-private")

    def stop_server(self) -> None:
        # Graceful: SIGKILL would reach only the start script and leave the VM running.
        stop_server(self.server)

    async def new_queue(self) -> str:
        return await self.new_queue_named(self.new_name())

    async def new_queue_named(self, name: str) -> str:
        rabbitmq_api(self.server, f"/queues/%2F/{name}", method="PUT", body=b'{"durable": true}')
        self.counts[name] = 0
        return name

    def amqp_host(self, password: str) -> str:
        return f"amqp://{RABBITMQ_USER}:{password}@127.0.0.1:{self.server.ports[0]}"

    def spec(self, queue: str, **metadata: str) -> TriggerSpec:
        metadata = {"queueName": queue, "mode": "QueueLength", "value": "5", **metadata}
        return TriggerSpec("rabbitmq", metadata, {"host": self.amqp_host(RABBITMQ_PASSWORD)})

    def bad_auth_spec(self, queue: str) -> TriggerSpec | None:
        metadata = {"queueName": queue, "mode": "QueueLength", "value": "5"}
        return TriggerSpec("rabbitmq", metadata, {"host": self.amqp_host(BAD_PASSWORD)})

    async def fill(self, queue: str, count: int) -> None:
        message = {
            "properties": {},
            "routing_key": queue,
            "payload": "job",
            "payload_encoding": "string",
        }
        body = json.dumps(message).encode()
        for _ in range(count):
            reply = rabbitmq_api(
                self.server, "/exchanges/%2F/amq.default/publish", method="POST", body=body
            )
            assert json.loads(reply) == {"routed": True}
        self.counts[queue] += count

    def wait_for_stats(self, queue: str, *, unacknowledged: int = 0) -> None:
        """Poll the management API until its (periodically refreshed) numbers show the queue's
        messages; the scaler's HTTP path reads the same numbers."""
        deadline = time.monotonic() + 15
        while True:
            stats = json.loads(rabbitmq_api(self.server, f"/queues/%2F/{queue}"))
            counts = (stats.get("messages"), stats.get("messages_unacknowledged"))
            if counts == (self.counts[queue], unacknowledged):
                return
            assert time.monotonic() < deadline, f"stats never showed {self.counts[queue]}"
            time.sleep(0.05)

    def metric_name(self, queue: str) -> str:
        return f"rabbitmq-{queue}"


class RabbitMQHttpBackend(RabbitMQBackend):
    """The same queues measured through the management API, credentials in auth."""

    def http_host(self) -> str:
        return f"http://127.0.0.1:{self.server.ports[1]}"

    def spec(self, queue: str, **metadata: str) -> TriggerSpec:
        metadata = {
            "host": self.http_host(),
            "queueName": queue,
            "mode": "QueueLength",
            "value": "5",
            **metadata,
        }
        auth = {"username": RABBITMQ_USER, "password": RABBITMQ_PASSWORD}
        return TriggerSpec("rabbitmq", metadata, auth)

    def bad_auth_spec(self, queue: str) -> TriggerSpec | None:
        auth = {"username": RABBITMQ_USER, "password": BAD_PASSWORD}
        return TriggerSpec("rabbitmq", self.spec(queue).metadata, auth)

    async def fill(self, queue: str, count: int) -> None:
        await super().fill(queue, count)
        self.wait_for_stats(queue)


BACKENDS: dict[str, tuple[type[Backend], str]] = {
    "redis": (RedisListBackend, "redis_server"),
    "redis-streams": (RedisStreamBackend, "redis_server"),
    "postgresql": (PostgresBackend, "postgres_server"),
    "aws-sqs-queue": (SqsBackend, "moto_server"),
    "nats-jetstream": (NatsBackend, "nats_server"),
    "nats-jetstream-monitoring": (NatsMonitoringBackend, "nats_server"),
    "rabbitmq": (RabbitMQBackend, "rabbitmq_server"),
    "rabbitmq-http": (RabbitMQHttpBackend, "rabbitmq_server"),
}
"""Backend name: (its class, the session fixture of its server)."""
