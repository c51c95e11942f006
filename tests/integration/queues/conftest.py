"""Queue servers on loopback for the queue-depth scalers: Redis, PostgreSQL, moto (SQS), NATS
with JetStream and RabbitMQ with its management plugin, each from Debian's packages or the venv.

One session-scoped server per backend, each on free loopback ports with its own temp dir; the
tests that stop a server mid-test get a private one from ``start_*``. Every server requires a
password where it can, so the tests exercise auth, and ``Backend`` objects (``backends.py``)
give the generic tests one way to fill a queue and build a trigger for each. Readiness is polled.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.queues.servers import (
    start_moto,
    start_nats,
    start_postgres,
    start_rabbitmq,
    start_redis,
    stop_server,
)
from tests.servers import ServerProcess


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_postgres(tmp_path_factory.mktemp("postgres"))
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_moto(tmp_path_factory.mktemp("moto"))
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def moto_iam_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A moto that checks access keys (``INITIAL_NO_AUTH_ACTION_COUNT=0``): every key is
    unknown to it, so every request is refused as a real SQS refuses a bad key."""
    server = start_moto(tmp_path_factory.mktemp("moto-iam"), check_auth=True)
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_nats(tmp_path_factory.mktemp("nats"))
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def rabbitmq_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_rabbitmq(tmp_path_factory.mktemp("rabbitmq"))
    yield server
    stop_server(server)


@pytest.fixture
def private_dir(tmp_path: Path) -> Path:
    return tmp_path / "private-server"
