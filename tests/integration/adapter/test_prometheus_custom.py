"""The Prometheus custom-metrics source against a real Prometheus scraping a real pushgateway:
discovery, values by selector and by name, the HTTP answers of both versions, and outages.

Without a cluster the source runs as in standalone mode: a Pods request's label selector becomes
PromQL matchers on the series, so the pushed series carry the pods' `app` label. (Listing the
objects through the Kubernetes API is shown in tests/e2e/test_metrics_api.py.)
"""

from __future__ import annotations

import asyncio
import math
import ssl
import subprocess
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from adapter import (
    AdapterServer,
    AllowAll,
    CustomSample,
    FrontProxyAuthenticator,
    GroupResource,
    MetricNotFoundError,
    NoMetrics,
    RequestHeaderSettings,
    ServingCertificate,
    ServingSettings,
    UnavailableError,
    create_app,
    parse_selector,
)
from adapter.prometheus_custom import PrometheusCustomMetrics
from adapter.prometheus_rules import parse_config
from adapter.providers import CustomMetricInfo
from tests.integration.adapter.conftest import AdapterPKI, ClientFactory
from tests.servers import ServerProcess
from tests.servers.process import http_ok
from tests.servers.prometheus import wait_prometheus
from tests.servers.updraft import UPDRAFT

pytestmark = pytest.mark.integration

PACKETS = "updraft_it_packets_per_second"
REQUESTS = "updraft_it_ingress_requests"
LATE = "updraft_it_late_total"
PODS = GroupResource("pods")
NAMESPACES = GroupResource("namespaces")
INGRESSES = GroupResource("ingresses", "networking.k8s.io")
EVERYTHING = parse_selector(None)
CUSTOM = "/apis/custom.metrics.k8s.io"

PER_POD = [
    # namespace, pod, app, value
    ("shop", "web-1", "web", 1500.0),
    ("shop", "web-2", "web", 2500.0),
    ("shop", "worker-1", "worker", 400.0),
    ("other", "web-1", "web", 9.0),
    ("nan-ns", "web-nan", "web", math.nan),
]
PER_ROUTE = [
    # namespace, ingress, verb, value
    ("shop", "main-route", "GET", 12000.0),
    ("shop", "main-route", "POST", 3000.0),
    ("shop", "side-route", "GET", 5.0),
]


def rules(url: str, *, late: bool = False, **top: Any) -> dict[str, Any]:
    """Two rules (pods and ingresses); with `late`, a third for a series only one test pushes."""
    namespace = {"namespace": {"resource": "namespace"}}
    by = "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)"
    config: dict[str, Any] = {
        "prometheus": {"url": url, "timeout": "2s"},
        "rules": [
            {
                "seriesQuery": f'{PACKETS}{{namespace!="",pod!=""}}',
                "resources": {"overrides": {**namespace, "pod": {"resource": "pod"}}},
                "name": {"matches": "^updraft_it_(.*)_per_second$", "as": "${1}-per-second"},
                "metricsQuery": by,
            },
            {
                "seriesQuery": f'{{__name__=~"{REQUESTS}|{LATE}",namespace!=""}}',
                "seriesFilters": [{"isNot": "_total$"}],
                "resources": {
                    "overrides": {
                        **namespace,
                        "ingress": {"group": "networking.k8s.io", "resource": "ingress"},
                    }
                },
                "name": {"matches": "^updraft_it_ingress_requests$", "as": "requests-per-second"},
                "metricsQuery": by,
            },
        ],
        **top,
    }
    if late:
        config["rules"].append(
            {
                "seriesQuery": f'{LATE}{{namespace!="",pod!=""}}',
                "resources": {"template": "<<.Resource>>"},
                "name": {"matches": "^updraft_it_(.*)_total$"},
                "metricsQuery": by,
            }
        )
    return config


@pytest.fixture(scope="module")
def custom_series(pushgateway: ServerProcess) -> Iterator[None]:
    registry = CollectorRegistry()
    packets = Gauge(PACKETS, "Packets.", ["namespace", "pod", "app"], registry=registry)
    for namespace, pod, app, value in PER_POD:
        packets.labels(namespace, pod, app).set(value)
    requests = Gauge(REQUESTS, "Requests.", ["namespace", "ingress", "verb"], registry=registry)
    for namespace, ingress, verb, value in PER_ROUTE:
        requests.labels(namespace, ingress, verb).set(value)
    push_to_gateway(f"127.0.0.1:{pushgateway.port}", job="updraft-it-custom", registry=registry)
    yield
    # The late series belongs to one test; never leave it for a re-run.
    url = f"http://127.0.0.1:{pushgateway.port}/metrics/job/late"
    with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=5):
        pass


@pytest.fixture
async def source(
    prometheus: ServerProcess, custom_series: None
) -> AsyncIterator[PrometheusCustomMetrics]:
    await asyncio.to_thread(wait_prometheus, prometheus, (PACKETS, REQUESTS))
    provider = PrometheusCustomMetrics(
        parse_config(rules(f"http://127.0.0.1:{prometheus.port}")), value_ttl=0
    )
    yield provider
    await provider.close()


def values(samples: Any) -> dict[str, float]:
    return {s.described_object.name: float(s.value) for s in samples}


# --- discovery -------------------------------------------------------------------------------


async def test_discovery_lists_what_the_series_describe(source: PrometheusCustomMetrics) -> None:
    assert await source.list_metrics() == ()  # nothing before the first discovery
    await source.refresh()
    assert list(await source.list_metrics()) == [
        CustomMetricInfo(INGRESSES, "requests-per-second", namespaced=True),
        CustomMetricInfo(NAMESPACES, "packets-per-second", namespaced=False),
        CustomMetricInfo(NAMESPACES, "requests-per-second", namespaced=False),
        CustomMetricInfo(PODS, "packets-per-second", namespaced=True),
    ]


async def test_relist_picks_up_new_series_and_close_stops_it(
    prometheus: ServerProcess, pushgateway: ServerProcess, custom_series: None
) -> None:
    url = f"http://127.0.0.1:{prometheus.port}"
    provider = PrometheusCustomMetrics(
        parse_config(rules(url, late=True, relistInterval="200ms", metricsMaxAge="1m")), value_ttl=0
    )
    await provider.start()
    try:
        assert CustomMetricInfo(PODS, "late", namespaced=True) not in await provider.list_metrics()
        registry = CollectorRegistry()
        late = Gauge(LATE, "Late.", ["namespace", "pod"], registry=registry)
        late.labels("shop", "web-1").set(7)
        push_to_gateway(f"127.0.0.1:{pushgateway.port}", job="late", registry=registry)
        for _ in range(100):
            if CustomMetricInfo(PODS, "late", namespaced=True) in await provider.list_metrics():
                break
            await asyncio.sleep(0.1)
        listed = await provider.list_metrics()
        # The template maps `pod`, `namespace` and Prometheus' own `job` label (Jobs!).
        assert {(str(i.resource), i.metric) for i in listed if i.metric == "late"} == {
            ("pods", "late"),
            ("namespaces", "late"),
            ("jobs.batch", "late"),
        }
        [sample] = await provider.get_by_selector(
            resource=PODS, namespace="shop", selector=EVERYTHING, metric="late",
            metric_selector=EVERYTHING,
        )  # fmt: skip
        assert (sample.described_object.name, sample.value) == ("web-1", 7.0)
    finally:
        await provider.close()


# --- values ----------------------------------------------------------------------------------


async def test_pods_values_by_selector(source: PrometheusCustomMetrics) -> None:
    await source.refresh()

    async def ask(namespace: str, selector: str | None) -> list[CustomSample]:
        found = await source.get_by_selector(
            resource=GroupResource("pods"),
            namespace=namespace,
            selector=parse_selector(selector),
            metric="packets-per-second",
            metric_selector=EVERYTHING,
        )
        return list(found)

    web = await ask("shop", "app=web")
    assert values(web) == {"web-1": 1500.0, "web-2": 2500.0}
    ref = web[0].described_object
    assert (ref.kind, ref.namespace, ref.api_version) == ("Pod", "shop", "/v1")
    assert web[0].timestamp.tzinfo is not None
    assert values(await ask("shop", "app in (web,worker)")) == {
        "web-1": 1500.0,
        "web-2": 2500.0,
        "worker-1": 400.0,
    }
    assert values(await ask("shop", None)) == values(await ask("shop", "app"))
    assert values(await ask("other", None)) == {"web-1": 9.0}
    assert values(await ask("nan-ns", None)) == {"web-nan": 0.0}  # NaN is served as 0
    assert await ask("shop", "app=nothing") == []
    assert await ask("empty-namespace", None) == []


@pytest.mark.parametrize(
    "spelling",
    [INGRESSES, GroupResource("ingresses"), GroupResource("ingress")],
    ids=str,
)
async def test_object_value_by_name_in_every_spelling(
    source: PrometheusCustomMetrics, spelling: GroupResource
) -> None:
    await source.refresh()
    sample = await source.get_by_name(
        resource=spelling,
        namespace="shop",
        name="main-route",
        metric="requests-per-second",
        metric_selector=EVERYTHING,
    )
    assert sample.value == 15000.0
    assert sample.metric == "requests-per-second"
    ref = sample.described_object
    assert (ref.kind, ref.name, ref.namespace) == ("Ingress", "main-route", "shop")
    assert ref.api_version == "networking.k8s.io/v1"


async def test_metric_selector_and_missing_objects(source: PrometheusCustomMetrics) -> None:
    await source.refresh()

    async def ask(name: str, *, metric: str = "requests-per-second", selector: str = "") -> float:
        sample = await source.get_by_name(
            resource=INGRESSES,
            namespace="shop",
            name=name,
            metric=metric,
            metric_selector=parse_selector(selector),
        )
        return float(sample.value)

    assert await ask("main-route", selector="verb=GET") == 12000.0
    assert await ask("main-route", selector="verb notin (GET)") == 3000.0
    assert await ask("side-route") == 5.0
    with pytest.raises(MetricNotFoundError, match=r"requests-per-second for ingresses\.networking"):
        await ask("no-route")
    with pytest.raises(MetricNotFoundError, match="could not find the metric bytes-per-second"):
        await ask("main-route", metric="bytes-per-second")
    with pytest.raises(MetricNotFoundError):  # a namespaced metric asked for at the root
        await source.get_by_name(
            resource=PODS, namespace="", name="web-1", metric="packets-per-second",
            metric_selector=EVERYTHING,
        )  # fmt: skip
    # A metric describing a namespace (`/namespaces/shop/metrics/...`): root-scoped.
    namespace = await source.get_by_name(
        resource=NAMESPACES, namespace="", name="shop", metric="packets-per-second",
        metric_selector=EVERYTHING,
    )  # fmt: skip
    assert namespace.value == 1500.0 + 2500.0 + 400.0
    ref = namespace.described_object
    assert (ref.kind, ref.name, ref.namespace, ref.api_version) == ("Namespace", "shop", "", "/v1")


async def test_prometheus_error_is_unavailable_with_its_message(
    prometheus: ServerProcess, custom_series: None
) -> None:
    config = rules(f"http://127.0.0.1:{prometheus.port}")
    config["rules"][0]["metricsQuery"] = "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>"
    provider = PrometheusCustomMetrics(parse_config(config))
    try:
        await provider.refresh()
        with pytest.raises(UnavailableError) as caught:
            await provider.get_by_selector(
                resource=PODS, namespace="shop", selector=EVERYTHING,
                metric="packets-per-second", metric_selector=EVERYTHING,
            )  # fmt: skip
        message = caught.value.message
        assert 'rules[0] query \'sum(updraft_it_packets_per_second{namespace="shop"}' in message
        assert "answered HTTP 400: bad_data:" in message
        assert "parse error" in message
    finally:
        await provider.close()


# --- over HTTPS, as kube-apiserver asks ------------------------------------------------------


@pytest.fixture
async def served(source: PrometheusCustomMetrics, test_pki: AdapterPKI) -> AsyncIterator[str]:
    certificate = ServingCertificate(
        ServingSettings(
            cert_file=test_pki.serving / "tls.crt",
            key_file=test_pki.serving / "tls.key",
            client_ca_pems=(test_pki.front_proxy_ca.read_bytes(),),
        )
    )
    app = create_app(
        external=NoMetrics(),
        custom=source,
        authenticator=FrontProxyAuthenticator(
            RequestHeaderSettings(client_ca_pem=test_pki.front_proxy_ca.read_bytes())
        ),
        authorizer=AllowAll(),
    )
    server = AdapterServer(app, certificate=certificate, host="127.0.0.1", port=0)
    await source.refresh()
    await server.start()
    try:
        yield f"https://127.0.0.1:{server.port}{CUSTOM}"
    finally:
        await server.close()


async def get(session: aiohttp.ClientSession, url: str, status: int = 200, **kw: Any) -> Any:
    async with session.get(url, **kw) as response:
        body = await response.json()
        assert response.status == status, body
        return body


async def test_discovery_and_values_over_https_in_both_versions(
    served: str, session_for: ClientFactory
) -> None:
    session = session_for()
    for version in ("v1beta1", "v1beta2"):
        listed = await get(session, f"{served}/{version}")
        assert [(r["name"], r["namespaced"]) for r in listed["resources"]] == [
            ("ingresses.networking.k8s.io/requests-per-second", True),
            ("namespaces/packets-per-second", False),
            ("namespaces/requests-per-second", False),
            ("pods/packets-per-second", True),
        ]

    pods = await get(
        session,
        f"{served}/v1beta1/namespaces/shop/pods/%2A/packets-per-second",
        params={"labelSelector": "app=web"},
    )
    assert (pods["kind"], pods["apiVersion"]) == (
        "MetricValueList",
        "custom.metrics.k8s.io/v1beta1",
    )
    items = sorted(pods["items"], key=lambda i: i["describedObject"]["name"])
    assert [{k: v for k, v in i.items() if k != "timestamp"} for i in items] == [
        {
            "describedObject": {
                "kind": "Pod",
                "namespace": "shop",
                "name": name,
                "apiVersion": "/v1",
            },
            "metricName": "packets-per-second",
            "value": value,
            "selector": None,
        }
        for name, value in (("web-1", "1500"), ("web-2", "2500"))
    ]
    assert all(i["timestamp"].endswith("Z") for i in items)

    ingress = await get(
        session,
        f"{served}/v1beta2/namespaces/shop/ingresses.networking.k8s.io/main-route/"
        "requests-per-second",
        params={"metricLabelSelector": "verb=GET"},
    )
    [item] = ingress["items"]
    del item["timestamp"]
    assert ingress["apiVersion"] == "custom.metrics.k8s.io/v1beta2"
    assert item == {
        "describedObject": {
            "kind": "Ingress",
            "namespace": "shop",
            "name": "main-route",
            "apiVersion": "networking.k8s.io/v1",
        },
        "metric": {"name": "requests-per-second", "selector": {"matchLabels": {"verb": "GET"}}},
        "value": "12k",
    }

    missing = await get(
        session,
        f"{served}/v1beta2/namespaces/shop/ingresses.networking.k8s.io/gone/requests-per-second",
        status=404,
    )
    assert missing["reason"] == "NotFound"
    assert missing["message"] == (
        "the server could not find the metric requests-per-second for "
        "ingresses.networking.k8s.io gone"
    )


async def test_prometheus_down_is_503_and_the_index_is_kept(
    own_prometheus: ServerProcess, custom_series: None, test_pki: AdapterPKI,
    session_for: ClientFactory,
) -> None:  # fmt: skip
    await asyncio.to_thread(wait_prometheus, own_prometheus, (PACKETS, REQUESTS))
    provider = PrometheusCustomMetrics(
        parse_config(rules(f"http://127.0.0.1:{own_prometheus.port}")), value_ttl=0
    )
    try:
        await provider.refresh()
        before = await provider.list_metrics()
        assert len(before) == 4
        own_prometheus.kill()
        with pytest.raises(UnavailableError, match="is unreachable"):
            await provider.refresh()
        assert await provider.list_metrics() == before
        with pytest.raises(UnavailableError) as caught:
            await provider.get_by_name(
                resource=INGRESSES, namespace="shop", name="main-route",
                metric="requests-per-second", metric_selector=EVERYTHING,
            )  # fmt: skip
        assert f"Prometheus at http://127.0.0.1:{own_prometheus.port} is unreachable" in (
            caught.value.message
        )

        app = create_app(
            external=NoMetrics(),
            custom=provider,
            authenticator=FrontProxyAuthenticator(
                RequestHeaderSettings(client_ca_pem=test_pki.front_proxy_ca.read_bytes())
            ),
            authorizer=AllowAll(),
        )
        certificate = ServingCertificate(
            ServingSettings(
                cert_file=test_pki.serving / "tls.crt",
                key_file=test_pki.serving / "tls.key",
                client_ca_pems=(test_pki.front_proxy_ca.read_bytes(),),
            )
        )
        server = AdapterServer(app, certificate=certificate, host="127.0.0.1", port=0)
        await server.start()
        try:
            url = f"https://127.0.0.1:{server.port}{CUSTOM}/v1beta1/namespaces/shop/pods/*/"
            body = await get(session_for(), url + "packets-per-second", status=503)
            assert body["reason"] == "ServiceUnavailable"
            assert "is unreachable" in body["message"]
        finally:
            await server.close()
    finally:
        await provider.close()


# --- the updraft process ---------------------------------------------------------------------


def test_a_bad_rules_file_stops_startup_naming_the_rule(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    document = rules("http://127.0.0.1:1")
    document["rules"][1]["name"]["matches"] = "(unclosed"
    bad.write_text(yaml.safe_dump(document))
    base = [UPDRAFT, "serve", "--metrics-port=0", "--grpc-port=0", f"--cert-dir={tmp_path}"]
    empty = tmp_path / "sources.yaml"
    empty.write_text("")
    standalone = [f"--standalone-config={empty}", "--insecure-no-auth"]
    done = subprocess.run(
        [*base, *standalone, f"--custom-metrics-config={bad}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert f"--custom-metrics-config {bad}: rules[1].name.matches" in done.stderr
    missing = subprocess.run(
        [*base, *standalone, f"--custom-metrics-config={tmp_path / 'nope.yaml'}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode == 2
    assert "--custom-metrics-config" in missing.stderr
    assert "is not a readable file" in missing.stderr


def serve_process(directory: Path, config: Path, sources: Path, *extra: str) -> ServerProcess:
    """`updraft serve` in standalone mode, no auth, with these custom-metrics rules."""
    return ServerProcess(
        name="updraft",
        binary=UPDRAFT,
        ports=2,
        directory=directory,
        args=lambda ports, workdir: [
            "serve",
            "--grpc-port=0",
            "--metrics-host=127.0.0.1",
            f"--metrics-port={ports[0]}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports[1]}",
            f"--cert-dir={workdir / 'serving'}",
            f"--standalone-config={sources}",
            "--insecure-no-auth",
            f"--custom-metrics-config={config}",
            *extra,
        ],
    )


@pytest.fixture
def updraft(
    tmp_path: Path, prometheus: ServerProcess, custom_series: None
) -> Iterator[ServerProcess]:
    config = tmp_path / "rules.yaml"
    config.write_text(yaml.safe_dump(rules(f"http://127.0.0.1:{prometheus.port}")))
    empty = tmp_path / "sources.yaml"
    empty.write_text("")
    wait_prometheus(prometheus, (PACKETS, REQUESTS))
    server = serve_process(tmp_path, config, empty)
    server.start()
    server.wait_ready(lambda: http_ok(f"http://127.0.0.1:{server.ports[0]}/readyz"), what="ready")
    yield server
    server.stop()


async def test_serve_with_custom_metrics_config(updraft: ServerProcess) -> None:
    context = ssl.create_default_context(cafile=str(updraft.directory / "serving" / "ca.crt"))
    base = f"https://localhost:{updraft.ports[1]}{CUSTOM}"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:
        listed = await get(http, f"{base}/v1beta2")
        assert "pods/packets-per-second" in {r["name"] for r in listed["resources"]}
        body = await get(
            http,
            f"{base}/v1beta2/namespaces/shop/pods/%2A/packets-per-second",
            params={"labelSelector": "app=worker"},
        )
        [item] = body["items"]
        assert (item["describedObject"]["name"], item["value"]) == ("worker-1", "400")


async def test_prometheus_down_at_start_is_503_not_404() -> None:
    # Nothing listens on the discard port: the first discovery fails.
    provider = PrometheusCustomMetrics(parse_config(rules("http://127.0.0.1:9")), value_ttl=0)
    try:
        await provider.start()  # logs the failure and keeps going
        with pytest.raises(UnavailableError) as caught:
            await provider.get_by_name(
                resource=INGRESSES, namespace="shop", name="main-route",
                metric="requests-per-second", metric_selector=EVERYTHING,
            )  # fmt: skip
        assert "not discovered yet" in caught.value.message
        assert "http://127.0.0.1:9 is unreachable" in caught.value.message
    finally:
        await provider.close()
