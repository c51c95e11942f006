"""Integration fixtures: a real Prometheus scraping a real pushgateway, both on loopback.

Both run from Debian's packages (``make setup``); a missing binary fails the test. Series are
pushed once per session; readiness is polled (``/-/ready``, then the series being queryable).
"""

from __future__ import annotations

import math
import urllib.parse
import urllib.request
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from tests.servers import ServerProcess, attach_log_tails, http_ok

SCRAPE_CONFIG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: pushgateway
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""
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
    server = ServerProcess(
        name="pushgateway",
        binary="prometheus-pushgateway",
        args=lambda ports, _: [f"--web.listen-address=127.0.0.1:{ports[0]}"],
        directory=tmp_path_factory.mktemp("pushgateway"),
    )
    server.start()
    try:
        server.wait_ready(lambda: http_ok(f"http://127.0.0.1:{server.port}/-/ready"))
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


def query_has_result(port: int, query: str) -> bool:
    """Whether ``query`` returns a non-empty result on the Prometheus at ``port``."""
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            document = orjson.loads(response.read())
    except OSError:
        return False
    return bool(document.get("data", {}).get("result"))


def start_prometheus(directory: Path, pushgateway: ServerProcess) -> ServerProcess:
    config = directory / "prometheus.yml"
    directory.mkdir(parents=True, exist_ok=True)
    config.write_text(SCRAPE_CONFIG.format(port=pushgateway.port))

    def args(ports: Sequence[int], workdir: Path) -> list[str]:
        return [
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{ports[0]}",
        ]

    server = ServerProcess(name="prometheus", binary="prometheus", args=args, directory=directory)
    server.start()
    wait_prometheus(server)
    return server


def wait_prometheus(server: ServerProcess) -> None:
    server.wait_ready(lambda: http_ok(f"http://127.0.0.1:{server.port}/-/ready"))
    for series in ("updraft_it_queue_depth", "updraft_it_multi", "updraft_it_nan"):
        server.wait_ready(visible(server.port, series), what=f"scraping {series}")


def visible(port: int, series: str) -> Callable[[], bool]:
    return lambda: query_has_result(port, series)


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
