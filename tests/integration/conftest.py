"""Integration fixtures: a real Prometheus scraping a real pushgateway, both on loopback.

Both run from Debian's packages (``make setup``); a missing binary fails the test. Series are
pushed once per session; readiness is polled (``/-/ready``, then the series being queryable).
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from tests.servers import ServerProcess, attach_log_tails
from tests.servers.prometheus import start_prometheus as start_series_prometheus
from tests.servers.prometheus import start_pushgateway
from tests.servers.prometheus import wait_prometheus as wait_series

QUEUE_DEPTH = 42.0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    attach_log_tails(report)
    return report


@pytest.fixture(scope="session")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_pushgateway(tmp_path_factory.mktemp("pushgateway"))
    try:
        registry = CollectorRegistry()
        Gauge("updraft_it_queue_depth", "A queue.", registry=registry).set(QUEUE_DEPTH)
        multi = Gauge("updraft_it_multi", "Two series.", ["shard"], registry=registry)
        multi.labels("a").set(1)
        multi.labels("b").set(2)
        Gauge("updraft_it_nan", "Not a number.", registry=registry).set(math.nan)
        push_to_gateway(f"127.0.0.1:{server.port}", job="updraft-it", registry=registry)
        yield server
    finally:
        server.stop()


SERIES = ("updraft_it_queue_depth", "updraft_it_multi", "updraft_it_nan")


def start_prometheus(directory: Path, pushgateway: ServerProcess) -> ServerProcess:
    return start_series_prometheus(directory, pushgateway, series=SERIES)


def wait_prometheus(server: ServerProcess) -> None:
    wait_series(server, SERIES)


@pytest.fixture(scope="session")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, pushgateway: ServerProcess
) -> Iterator[ServerProcess]:
    server = start_prometheus(tmp_path_factory.mktemp("prometheus"), pushgateway)
    yield server
    server.stop()


@pytest.fixture
def own_prometheus(tmp_path: Path, pushgateway: ServerProcess) -> Iterator[ServerProcess]:
    """A Prometheus for one test only, which that test may kill and restart."""
    server = start_prometheus(tmp_path / "prometheus", pushgateway)
    yield server
    server.stop()
