"""A real Prometheus scraping a real pushgateway on loopback (Debian's packages), for any tier.

Readiness is polled: `/-/ready`, then each awaited series being queryable. The scrape interval
is 1 s so a pushed value is visible within a couple of seconds.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson

from tests.servers.process import ServerProcess, http_ok

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


def start_pushgateway(directory: Path) -> ServerProcess:
    server = ServerProcess(
        name="pushgateway",
        binary="prometheus-pushgateway",
        args=lambda ports, _: [f"--web.listen-address=127.0.0.1:{ports[0]}"],
        directory=directory,
    )
    server.start()
    server.wait_ready(lambda: http_ok(f"http://127.0.0.1:{server.port}/-/ready"))
    return server


def query_has_result(port: int, query: str) -> bool:
    """Whether `query` returns a non-empty result on the Prometheus at `port`."""
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            document = orjson.loads(response.read())
    except OSError:
        return False
    return bool(document.get("data", {}).get("result"))


def visible(port: int, series: str) -> Callable[[], bool]:
    return lambda: query_has_result(port, series)


def wait_prometheus(server: ServerProcess, series: Sequence[str]) -> None:
    server.wait_ready(lambda: http_ok(f"http://127.0.0.1:{server.port}/-/ready"))
    for name in series:
        server.wait_ready(visible(server.port, name), what=f"scraping {name}")


def start_prometheus(
    directory: Path, pushgateway: ServerProcess, *, series: Sequence[str] = ()
) -> ServerProcess:
    """Prometheus scraping `pushgateway`, returned once every name in `series` is queryable."""
    return start_prometheus_with(
        directory, SCRAPE_CONFIG.format(port=pushgateway.port), series=series
    )


def start_prometheus_with(
    directory: Path, config_text: str, *, series: Sequence[str] = ()
) -> ServerProcess:
    """Prometheus running `config_text` (its prometheus.yml), returned once every name in
    `series` is queryable."""
    config = directory / "prometheus.yml"
    directory.mkdir(parents=True, exist_ok=True)
    config.write_text(config_text)

    def args(ports: Sequence[int], workdir: Path) -> list[str]:
        return [
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{ports[0]}",
        ]

    server = ServerProcess(name="prometheus", binary="prometheus", args=args, directory=directory)
    server.start()
    wait_prometheus(server, series)
    return server
