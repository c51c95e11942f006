"""The custom-metrics provider against a Prometheus that wants credentials.

TLS and basic auth: a real Prometheus started with `--web.config.file` (a serving certificate
from a test CA, client certificates required, one basic-auth user). A bearer token: Prometheus
does not check tokens itself (in a cluster kube-rbac-proxy does, in front of it), so a small
loopback proxy that forwards only requests carrying the token stands in front of the real
Prometheus, and `updraft serve` is given the token through `--prometheus-bearer-token-file`.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web

from adapter import UnavailableError
from adapter.prometheus_custom import PrometheusCustomMetrics
from adapter.prometheus_rules import parse_config
from scalers.prometheus_client import PrometheusAuth
from scalers.sessions import TlsMaterial
from tests.cluster import pki
from tests.integration.adapter.test_prometheus_custom import (
    CUSTOM,
    EVERYTHING,
    PACKETS,
    PODS,
    REQUESTS,
    custom_series,  # noqa: F401 - the series both modules query, as a fixture
    rules,
    serve_process,
    values,
)
from tests.servers import ServerProcess
from tests.servers.process import http_ok
from tests.servers.prometheus import SCRAPE_CONFIG, query_has_result

USER, PASSWORD = "hpa", "pw-s3cret"
# bcrypt of PASSWORD (cost 12), as Prometheus's web config wants it; made once with crypt(3).
PASSWORD_HASH = "$2b$12$HyT.w.F1crRRyZlhL5tZ0.p2xd9TeZbZwMonhfaQLfe82ViDXhFEq"
TOKEN = "tok-7f3a"

# Pushed first, so both Prometheus servers here have the series to wait for.
pytestmark = pytest.mark.usefixtures("custom_series")


@dataclass(frozen=True)
class GuardedPrometheus:
    server: ServerProcess
    ca: Path
    client: pki.KeyPair

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.port}"

    def auth(self, *, password: str = PASSWORD, client_cert: bool = True) -> PrometheusAuth:
        tls = TlsMaterial(
            ca=self.ca.read_text(),
            cert=self.client.cert.read_text() if client_cert else None,
            key=self.client.key.read_text() if client_cert else None,
        )
        return PrometheusAuth.build(basic=(USER, password), tls=tls)


def _ready(prometheus: GuardedPrometheus, query: str | None) -> bool:
    context = ssl.create_default_context(cafile=str(prometheus.ca))
    context.load_cert_chain(str(prometheus.client.cert), str(prometheus.client.key))
    handler = urllib.request.HTTPSHandler(context=context)
    password = urllib.request.HTTPPasswordMgrWithPriorAuth()
    password.add_password(None, prometheus.url, USER, PASSWORD, is_authenticated=True)
    opener = urllib.request.build_opener(handler, urllib.request.HTTPBasicAuthHandler(password))
    path = "/-/ready" if query is None else f"/api/v1/query?query={query}"
    try:
        with opener.open(prometheus.url + path, timeout=2) as response:
            body: bytes = response.read()
    except OSError:
        return False
    return query is None or b'"result":[{' in body


@pytest.fixture(scope="module")
def guarded(
    tmp_path_factory: pytest.TempPathFactory, pushgateway: ServerProcess
) -> Iterator[GuardedPrometheus]:
    directory = tmp_path_factory.mktemp("guarded-prometheus")
    ca = pki.new_ca(directory, "prometheus-ca")
    serving = pki.issue(
        ca, directory, "serving", common_name="prometheus", ip_addresses=("127.0.0.1",), server=True
    )
    client = pki.issue(ca, directory, "client", common_name="updraft", client=True)
    (directory / "prometheus.yml").write_text(SCRAPE_CONFIG.format(port=pushgateway.port))
    web_config = {
        "tls_server_config": {
            "cert_file": str(serving.cert),
            "key_file": str(serving.key),
            "client_auth_type": "RequireAndVerifyClientCert",
            "client_ca_file": str(ca.files.cert),
        },
        "basic_auth_users": {USER: PASSWORD_HASH},
    }
    (directory / "web.yml").write_text(yaml.safe_dump(web_config))
    server = ServerProcess(
        name="prometheus-guarded",
        binary="prometheus",
        directory=directory,
        args=lambda ports, workdir: [
            f"--config.file={directory / 'prometheus.yml'}",
            f"--web.config.file={directory / 'web.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{ports[0]}",
        ],
    )
    server.start()
    prometheus = GuardedPrometheus(server=server, ca=ca.files.cert, client=client)
    try:
        server.wait_ready(lambda: _ready(prometheus, None), what="ready over mTLS")
        for series in (PACKETS, REQUESTS):
            server.wait_ready(lambda s=series: _ready(prometheus, s), what=f"scraping {series}")  # type: ignore[misc]
        yield prometheus
    finally:
        server.stop()


async def test_tls_client_cert_and_basic_auth(guarded: GuardedPrometheus) -> None:
    provider = PrometheusCustomMetrics(
        parse_config(rules(guarded.url)), value_ttl=0, auth=guarded.auth()
    )
    try:
        await provider.refresh()
        samples = await provider.get_by_selector(
            resource=PODS, namespace="shop", selector=EVERYTHING,
            metric="packets-per-second", metric_selector=EVERYTHING,
        )  # fmt: skip
        assert values(samples) == {"web-1": 1500.0, "web-2": 2500.0, "worker-1": 400.0}
    finally:
        await provider.close()


async def test_wrong_password_and_missing_client_cert_are_refused(
    guarded: GuardedPrometheus,
) -> None:
    wrong = PrometheusCustomMetrics(
        parse_config(rules(guarded.url)), auth=guarded.auth(password="nope")
    )
    try:
        with pytest.raises(UnavailableError) as caught:
            await wrong.refresh()
        assert f"Prometheus at {guarded.url} refused our credentials: HTTP 401" in (
            caught.value.message
        )
        assert "nope" not in caught.value.message
    finally:
        await wrong.close()
    no_cert = PrometheusCustomMetrics(
        parse_config(rules(guarded.url)), auth=guarded.auth(client_cert=False)
    )
    try:
        with pytest.raises(UnavailableError, match="is unreachable"):
            await no_cert.refresh()
    finally:
        await no_cert.close()


async def test_unverified_server_certificate_is_refused(guarded: GuardedPrometheus) -> None:
    # The client certificate is sent, but the CA is the system's: Prometheus's is not trusted.
    tls = TlsMaterial(cert=guarded.client.cert.read_text(), key=guarded.client.key.read_text())
    provider = PrometheusCustomMetrics(
        parse_config(rules(guarded.url)), auth=PrometheusAuth.build(basic=(USER, PASSWORD), tls=tls)
    )
    try:
        with pytest.raises(UnavailableError, match="certificate verify failed"):
            await provider.refresh()
    finally:
        await provider.close()


# --- a bearer token, through `updraft serve`'s flags -----------------------------------------


@dataclass
class TokenProxy:
    """Forwards to Prometheus only what carries `Bearer TOKEN`; remembers what it saw."""

    upstream: str
    seen: list[tuple[str, str]]
    url: str = ""


@pytest.fixture
async def token_proxy(prometheus: ServerProcess) -> AsyncIterator[TokenProxy]:
    proxy = TokenProxy(upstream=f"http://127.0.0.1:{prometheus.port}", seen=[])
    http = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization", "")
        proxy.seen.append((authorization, request.headers.get("X-Scope-OrgID", "")))
        if authorization != f"Bearer {TOKEN}":
            return web.Response(status=401, text="Unauthorized")
        async with http.get(
            proxy.upstream + request.path, params=list(request.query.items())
        ) as answer:
            return web.Response(
                status=answer.status, body=await answer.read(), content_type="application/json"
            )

    app = web.Application()
    app.router.add_get("/{tail:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    proxy.url = f"http://127.0.0.1:{port}"
    yield proxy
    await runner.cleanup()
    await http.close()


async def test_serve_sends_the_bearer_token_from_its_file(
    tmp_path: Path, token_proxy: TokenProxy, prometheus: ServerProcess
) -> None:
    await asyncio.to_thread(
        prometheus.wait_ready, lambda: query_has_result(prometheus.port, PACKETS), what=PACKETS
    )
    config = tmp_path / "rules.yaml"
    config.write_text(yaml.safe_dump(rules(token_proxy.url)))
    empty = tmp_path / "sources.yaml"
    empty.write_text("")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    server = serve_process(
        tmp_path,
        config,
        empty,
        f"--prometheus-bearer-token-file={token_file}",
        "--prometheus-header=X-Scope-OrgID=team-a",
    )
    server.start()
    try:
        # The proxy runs on this loop: wait for readiness off it, so it can answer discovery.
        await asyncio.to_thread(
            server.wait_ready,
            lambda: http_ok(f"http://127.0.0.1:{server.ports[0]}/readyz"),
            what="ready",
        )
        context = ssl.create_default_context(cafile=str(tmp_path / "serving" / "ca.crt"))
        base = f"https://localhost:{server.ports[1]}{CUSTOM}/v1beta2"
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http,
            http.get(
                f"{base}/namespaces/shop/pods/%2A/packets-per-second",
                params={"labelSelector": "app=worker"},
            ) as response,
        ):
            assert response.status == 200, await response.text()
            body = await response.json()
        [item] = body["items"]
        assert (item["describedObject"]["name"], item["value"]) == ("worker-1", "400")
        assert token_proxy.seen
        assert set(token_proxy.seen) == {(f"Bearer {TOKEN}", "team-a")}
        assert TOKEN not in server.log_tail(400)
    finally:
        await asyncio.to_thread(server.stop)
