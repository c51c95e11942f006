"""Every Grafana panel and every alert of manifests/grafana/ against a real Prometheus.

A real Prometheus (loading manifests/grafana/alerts.yaml as its rule file) scrapes a running
`updraft serve`, a running `updraft provisioner` and kube-apiserver. Both Updraft processes first
do the work an operator watches: the metrics API answers for a healthy trigger, one whose
upstream went away (stale values), one on its fallback and one failing outright, plus a 404 and
KEDA gRPC calls; the provisioner launches nodes, drains a deleted NodeClaim, consolidates empty
nodes away and hits a NodePool's limits. An APIService whose Service is missing stands for the
metrics API being down. Then every panel's query returns data, and every alert's expression
fires, so no panel or rule names a series nobody exports.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest
import yaml

from keda._pb import externalscaler_pb2 as pb
from keda._pb import externalscaler_pb2_grpc as pb_grpc
from kits import cancel_and_wait
from kube import JSON
from provisioner.objects import NODECLAIMS
from tests.cluster.controlplane import REPO, ControlPlane
from tests.e2e.test_disruption import FAST, _consolidating
from tests.e2e.test_metrics_api import kubectl
from tests.e2e.test_provisioner import Tenant, _scrape, crds, tenant
from tests.e2e.waiting import eventually
from tests.servers.process import ServerProcess, free_port
from tests.servers.prometheus import start_prometheus_with
from tests.servers.updraft import standalone_serve

__all__ = ["crds", "tenant"]

GRAFANA = REPO / "manifests" / "grafana"
DASHBOARDS = sorted(GRAFANA.glob("*.json"))
ALERTS = GRAFANA / "alerts.yaml"
VARIABLES = {"$namespace": ".*", "$__rate_interval": "1m"}
"""What Grafana puts for the dashboards' variables: All namespaces, a rate window of 1m (the
scrape interval here is 1 s)."""
BROKEN_APISERVICE = "v1beta2.custom.metrics.k8s.io"
NAMESPACE = "default"


def sources(upstream: int, dead: int) -> str:
    """The standalone MetricSources: one per state an operator tells apart."""

    def source(name: str, trigger: JSON, **spec: Any) -> JSON:
        return {
            "apiVersion": "updraft.io/v1alpha1",
            "kind": "MetricSource",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"trigger": trigger, "pollingInterval": 1, **spec},
        }

    def prometheus(port: int) -> JSON:
        meta = {"serverAddress": f"http://127.0.0.1:{port}", "query": "vector(3)", "threshold": "1"}
        return {"type": "prometheus", "metadata": meta}

    cron = {
        "type": "cron",
        "metadata": {
            "timezone": "UTC",
            "start": "0 0 * * *",
            "end": "59 23 * * *",
            "desiredReplicas": "2",
        },
    }
    docs = [
        source("ticks", cron),
        source("upstream", prometheus(upstream)),
        source("broken", prometheus(dead), fallback={"failureThreshold": 1, "value": 0}),
        source("down", prometheus(dead)),
    ]
    return yaml.safe_dump_all(docs)


def scrape_config(serve: int, provisioner: int, cp: ControlPlane, rules: Path) -> str:
    """Both Updraft processes, and kube-apiserver with the admin's client certificate (for the
    aggregator's own series), every second; the alert rules loaded."""
    kubeconfig = json.loads(cp.kubeconfig.read_text())
    cluster = kubeconfig["clusters"][0]["cluster"]
    user = kubeconfig["users"][0]["user"]
    doc = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": "updraft", "static_configs": [{"targets": [f"127.0.0.1:{serve}"]}]},
            {
                "job_name": "updraft-provisioner",
                "static_configs": [{"targets": [f"127.0.0.1:{provisioner}"]}],
            },
            {
                "job_name": "apiserver",
                "scheme": "https",
                "tls_config": {
                    "ca_file": cluster["certificate-authority"],
                    "cert_file": user["client-certificate"],
                    "key_file": user["client-key"],
                },
                "static_configs": [{"targets": [urllib.parse.urlsplit(cluster["server"]).netloc]}],
            },
        ],
    }
    return yaml.safe_dump(doc)


@dataclass
class Serve:
    process: ServerProcess
    upstream: ServerProcess
    work: Path

    @property
    def api(self) -> str:
        return f"https://localhost:{self.process.ports[2]}"

    def get(self, metric: str) -> int:
        """One metrics API read as an HPA makes it; the status code."""
        tls = ssl.create_default_context(cafile=str(self.work / "serving" / "ca.crt"))
        path = f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/{metric}"
        try:
            with urllib.request.urlopen(self.api + path, context=tls, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as e:
            e.close()
            return e.code


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    upstream = start_prometheus_with(
        tmp_path / "upstream", yaml.safe_dump({"global": {"scrape_interval": "1s"}})
    )
    config = tmp_path / "sources.yaml"
    config.write_text(sources(upstream.port, free_port()))
    try:
        process = standalone_serve(config, tmp_path / "serve")
    except BaseException:
        upstream.stop()
        raise
    try:
        yield Serve(process, upstream, tmp_path / "serve")
    finally:
        process.stop()
        upstream.stop()


async def metrics_api_work(serve: Serve) -> None:
    """Reads for every state, over a few polling intervals so the upstream is asked again;
    then the upstream Prometheus goes away and `upstream` is served stale."""
    want = {"ticks": 200, "upstream": 200, "broken": 200, "down": 503, "no-such-metric": 404}

    async def answered() -> bool | None:
        got = {m: await asyncio.to_thread(serve.get, m) for m in want}
        assert got == want
        counters = await asyncio.to_thread(_scrape, serve.process.ports[1])
        calls = counters.get('updraft_scaler_upstream_calls_total{type="prometheus"}', 0.0)
        return True if calls >= 9 else None  # three prometheus triggers, each asked 3 times

    await eventually(answered, within=60, what="three rounds of upstream queries")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{serve.process.ports[0]}") as channel:
        stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
        ref = pb.ScaledObjectRef(
            name="web", namespace=NAMESPACE, scalerMetadata={"metricSourceRef": "ticks"}
        )
        spec = await stub.GetMetricSpec(ref, timeout=5)
        await stub.GetMetrics(
            pb.GetMetricsRequest(scaledObjectRef=ref, metricName=spec.metricSpecs[0].metricName),
            timeout=5,
        )
    serve.upstream.stop()

    async def stale() -> bool | None:
        assert await asyncio.to_thread(serve.get, "upstream") == 200
        counters = await asyncio.to_thread(_scrape, serve.process.ports[1])
        served = counters.get('updraft_scaler_cache_stale_served_total{type="prometheus"}', 0.0)
        return True if served > 0 else None

    await eventually(stale, within=30, what="the last good value served while upstream is gone")


def counter(counters: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in counters.items() if k.startswith(prefix))


async def provisioner_work(tenant: Tenant) -> None:
    """Launch, drain a deleted NodeClaim, consolidate empty nodes away, then hit the limits."""
    pool = _consolidating(tenant, "watched", after="1s")
    pool["spec"]["limits"] = {"cpu": "8"}
    name = pool["metadata"]["name"]
    await tenant.create_pool(pool)
    await tenant.deployment("web", 2)
    pods = await tenant.running("web", 2)
    node = pods[0]["spec"]["nodeName"]
    claim = next(
        c["metadata"]["name"]
        for c in await tenant.claims(name)
        if c["status"].get("nodeName") == node
    )
    await tenant.api.delete(NODECLAIMS, claim)

    async def seen(prefix: str) -> bool | None:
        counters = await asyncio.to_thread(_scrape, tenant.metrics_port)
        return True if counter(counters, prefix) > 0 else None

    await eventually(lambda: seen("updraft_provisioner_evictions_total"), within=90, what="a drain")
    await tenant.running("web", 2)
    await tenant.scale("web", 0)
    await eventually(
        lambda: seen("updraft_provisioner_nodes_disrupted_total"),
        within=90,
        what="empty nodes consolidated away",
    )
    await tenant.deployment("overflow", 12)

    async def blocked() -> bool | None:
        counters = await asyncio.to_thread(_scrape, tenant.metrics_port)
        pending = counters.get("updraft_provisioner_pending_pods", 0.0)
        none = counters.get('updraft_provisioner_batches_total{outcome="none"}', 0.0)
        return True if pending > 0 and none > 0 else None

    await eventually(blocked, within=90, what="pods pending past the pool's cpu limit")


def query(port: int, expr: str) -> list[JSON]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as response:
        doc = orjson.loads(response.read())
    assert doc["status"] == "success", doc
    result: list[JSON] = doc["data"]["result"]
    return result


def rule_groups(port: int) -> list[JSON]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/rules", timeout=5) as response:
        groups: list[JSON] = orjson.loads(response.read())["data"]["groups"]
    return groups


def panels() -> list[tuple[str, str]]:
    """(dashboard / panel title, expression with Grafana's variables filled in), every target."""
    out = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                for variable, value in VARIABLES.items():
                    expr = expr.replace(variable, value)
                out.append((f"{board['title']} / {panel['title']}", expr))
    return out


def alerts() -> list[tuple[str, str]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [(r["alert"], r["expr"]) for g in doc["groups"] for r in g["rules"]]


async def keep_asking(serve: Serve) -> None:
    """What HPAs do: ask again and again, so the failures stay current while they are judged."""
    while True:
        for metric in ("ticks", "upstream", "broken", "down"):
            await asyncio.to_thread(serve.get, metric)
        await asyncio.sleep(0.5)


async def test_every_panel_and_alert_returns_data(
    serve: Serve, tenant: Tenant, control_plane: ControlPlane, tmp_path: Path
) -> None:
    tenant.flags = FAST
    await tenant.create_nodeclass()
    await tenant.start()
    prometheus = start_prometheus_with(
        tmp_path / "prometheus",
        scrape_config(serve.process.ports[1], tenant.metrics_port, control_plane, ALERTS),
        series=["updraft_scaler_cache_keys", "updraft_provisioner_leader"],
    )
    # A metrics APIService whose Service does not exist: the aggregator reports it unavailable.
    apiservice = {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": BROKEN_APISERVICE},
        "spec": {
            "group": "custom.metrics.k8s.io",
            "version": "v1beta2",
            "service": {"name": "no-such-service", "namespace": tenant.namespace, "port": 443},
            "insecureSkipTLSVerify": True,
            "groupPriorityMinimum": 100,
            "versionPriority": 200,
        },
    }
    path = tmp_path / "apiservice.json"
    path.write_text(orjson.dumps(apiservice).decode())
    asking: asyncio.Task[None] | None = None
    try:
        await metrics_api_work(serve)
        asking = asyncio.create_task(keep_asking(serve))
        await provisioner_work(tenant)
        kubectl(control_plane, "create", "-f", str(path))
        await evaluate(prometheus.port)
    finally:
        if asking is not None:
            await cancel_and_wait(asking)
        kubectl(control_plane, "delete", "--ignore-not-found", "-f", str(path), "--wait=false")
        prometheus.stop()


async def evaluate(port: int) -> None:
    every = [*panels(), *alerts()]
    assert len({title for title, _ in every}) == len(every)

    async def all_answer() -> list[str] | None:
        empty = [t for t, e in every if not await asyncio.to_thread(query, port, e)]
        return [] if not empty else None

    try:
        await eventually(all_answer, within=60, what="every panel and alert to return data")
    except AssertionError:
        empty = [t for t, e in every if not await asyncio.to_thread(query, port, e)]
        raise AssertionError(f"no data for: {', '.join(empty)}") from None
    groups = await asyncio.to_thread(rule_groups, port)
    loaded = {r["name"]: r["health"] for g in groups for r in g["rules"]}
    assert loaded == {name: "ok" for name, _ in alerts()}


def test_dashboards_are_well_formed() -> None:
    """Unique panel ids, every panel on the datasource variable, no fixed namespace."""
    assert len(DASHBOARDS) == 3
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        names = [v["name"] for v in board["templating"]["list"]]
        assert names == ["datasource", "namespace"], path.name
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            for target in panel["targets"]:
                assert 'namespace=~"$namespace"' in target["expr"], panel["title"]
                assert 'namespace="' not in target["expr"], panel["title"]


def test_promtool_checks_the_rules() -> None:
    done = subprocess.run(
        ["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in done.stdout


def test_the_dashboard_configmaps_apply(control_plane: ControlPlane) -> None:
    """As a user applies them, into the namespace Grafana's sidecar watches."""
    out = kubectl(
        control_plane,
        "apply",
        "--server-side",
        "--dry-run=server",
        "-n",
        "default",
        "-f",
        str(GRAFANA / "dashboards.yaml"),
    )
    for path in DASHBOARDS:
        assert f"configmap/{path.stem}-dashboard serverside-applied" in out
    for doc in yaml.safe_load_all((GRAFANA / "dashboards.yaml").read_text()):
        assert doc["metadata"]["labels"]["grafana_dashboard"] == "1"
        (name,) = doc["data"]
        assert json.loads(doc["data"][name]) == json.loads((GRAFANA / name).read_text())
