"""The `redis` scaler's TLS keys (`enableTLS`, `unsafeSsl`, auth `ca`) against a real Redis
serving TLS only, with a certificate from a test CA."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client import CollectorRegistry

from scalers import MetricCache, TriggerSpec, UnavailableError
from tests.cluster import pki
from tests.integration.queues.servers import REDIS_PASSWORD
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration


class TlsRedis:
    def __init__(self, server: ServerProcess, ca_pem: str, ca_file: Path) -> None:
        self.server = server
        self.ca_pem = ca_pem
        self.ca_file = ca_file


def _tls_ping(port: int, ca_file: Path) -> bool:
    context = ssl.create_default_context(cafile=str(ca_file))
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=1) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
        ):
            sock.sendall(f"AUTH {REDIS_PASSWORD}\r\nPING\r\n".encode())
            return b"+PONG" in sock.recv(256)
    except OSError:
        return False


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    directory = tmp_path_factory.mktemp("redis-tls")
    ca = pki.new_ca(directory, "redis-ca")
    pair = pki.issue(
        ca,
        directory,
        "redis",
        common_name="redis",
        dns_names=("localhost",),
        ip_addresses=("127.0.0.1",),
        server=True,
    )
    server = ServerProcess(
        name="redis-tls",
        binary="redis-server",
        directory=directory,
        args=lambda ports, workdir: [
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--tls-port",
            str(ports[0]),
            "--tls-cert-file",
            str(pair.cert),
            "--tls-key-file",
            str(pair.key),
            "--tls-ca-cert-file",
            str(ca.files.cert),
            "--tls-auth-clients",
            "no",
            "--dir",
            str(workdir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            REDIS_PASSWORD,
        ],
    )
    server.start()
    server.wait_ready(lambda: _tls_ping(server.port, ca.files.cert), what="answering PING on TLS")
    client = redis.Redis(
        port=server.port, password=REDIS_PASSWORD, ssl=True, ssl_ca_certs=str(ca.files.cert)
    )
    client.rpush("jobs", *range(7))
    client.close()
    yield TlsRedis(server, ca.files.cert.read_text(), ca.files.cert)
    server.stop()


@pytest.fixture
async def cache() -> AsyncIterator[MetricCache]:
    cache = MetricCache(metrics_registry=CollectorRegistry())
    yield cache
    await cache.close()


def spec(server: TlsRedis, metadata: dict[str, str], auth: dict[str, str]) -> TriggerSpec:
    return TriggerSpec(
        "redis",
        {"address": f"127.0.0.1:{server.server.port}", "listName": "jobs", **metadata},
        {"password": REDIS_PASSWORD, **auth},
    )


async def test_tls_with_the_servers_ca(cache: MetricCache, tls_redis: TlsRedis) -> None:
    got = await cache.get(spec(tls_redis, {"enableTLS": "true"}, {"ca": tls_redis.ca_pem}))
    assert got.value == 7.0


async def test_tls_enabled_from_auth(cache: MetricCache, tls_redis: TlsRedis) -> None:
    got = await cache.get(spec(tls_redis, {}, {"tls": "enable", "ca": tls_redis.ca_pem}))
    assert got.value == 7.0


async def test_unsafe_ssl_skips_verification(cache: MetricCache, tls_redis: TlsRedis) -> None:
    got = await cache.get(spec(tls_redis, {"enableTLS": "true", "unsafeSsl": "true"}, {}))
    assert got.value == 7.0


async def test_an_unknown_ca_is_refused(cache: MetricCache, tls_redis: TlsRedis) -> None:
    with pytest.raises(UnavailableError) as err:
        await cache.get(spec(tls_redis, {"enableTLS": "true"}, {}))
    assert REDIS_PASSWORD not in str(err.value)


async def test_plaintext_against_a_tls_port_is_unavailable(
    cache: MetricCache, tls_redis: TlsRedis
) -> None:
    with pytest.raises(UnavailableError):
        await cache.get(spec(tls_redis, {}, {}))
