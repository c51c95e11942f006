"""The metrics adapter in a real cluster: registered by APIService through an ExternalName
Service, reading MetricSources with the RBAC our manifests grant, authenticating kube-apiserver
by its front-proxy certificate, and driving the real HPA controller."""

from __future__ import annotations

import asyncio
import base64
import ssl
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from kube import SECRETS, Api, Resource
from tests.cluster import pki
from tests.cluster.controlplane import (
    KWOK_ANNOTATION,
    REPO,
    ControlPlane,
    binary_dir,
    write_kubeconfig,
)
from tests.e2e.manifests import body
from tests.e2e.waiting import eventually
from tests.servers.process import ServerProcess
from tests.servers.prometheus import start_prometheus, start_pushgateway
from tests.servers.updraft import UPDRAFT

SYSTEM = "updraft-system"
EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"
METRICSOURCES = Resource("updraft.io", "v1alpha1", "metricsources", namespaced=True)
LOAD = "updraft_e2e_load"
PACKETS = "updraft_e2e_packets_per_second"
REQUESTS = "updraft_e2e_ingress_requests_per_second"
CUSTOM = "/apis/custom.metrics.k8s.io"
APISERVICES = (
    # name, group, version, versionPriority (v1beta2 preferred, as the custom-metrics apiserver
    # library's own deployment has it)
    ("v1beta1.external.metrics.k8s.io", "external.metrics.k8s.io", "v1beta1", 100),
    ("v1beta1.custom.metrics.k8s.io", "custom.metrics.k8s.io", "v1beta1", 100),
    ("v1beta2.custom.metrics.k8s.io", "custom.metrics.k8s.io", "v1beta2", 200),
)


def custom_rules(prometheus_url: str) -> dict[str, Any]:
    """The rules `--custom-metrics-config` gets: gauges pushed per pod and per Ingress (the
    example file's rate() over counters would need two scrapes per value)."""
    by = "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)"
    namespace = {"namespace": {"resource": "namespace"}}
    return {
        "prometheus": {"url": prometheus_url, "timeout": "2s"},
        # New series appear within a second or two (the HPA syncs every second here).
        "relistInterval": "1s",
        "metricsMaxAge": "5m",
        "rules": [
            {
                "seriesQuery": f'{PACKETS}{{namespace!="",pod!=""}}',
                "resources": {"overrides": {**namespace, "pod": {"resource": "pod"}}},
                "name": {"matches": f"^{PACKETS}$", "as": "packets-per-second"},
                "metricsQuery": by,
            },
            {
                "seriesQuery": f'{REQUESTS}{{namespace!="",ingress!=""}}',
                "resources": {
                    "overrides": {
                        **namespace,
                        "ingress": {"group": "networking.k8s.io", "resource": "ingress"},
                    }
                },
                "name": {"matches": f"^{REQUESTS}$", "as": "requests-per-second"},
                "metricsQuery": by,
            },
        ],
    }


def kubectl(cp: ControlPlane, *args: str) -> str:
    done = subprocess.run(
        [str(binary_dir() / "kubectl"), f"--kubeconfig={cp.kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


def service_account_kubeconfig(cp: ControlPlane, path: Path) -> Path:
    """A kubeconfig for the `updraft` ServiceAccount: the adapter runs with exactly the RBAC
    `manifests/base/rbac.yaml` grants, as it would in a pod."""
    token = kubectl(cp, "create", "token", "updraft", "-n", SYSTEM, "--duration=2h").strip()
    return write_kubeconfig(
        path,
        server=cp.apiserver_url(),
        ca=cp.pki_dir / "ca.crt",
        user={"token": token},
        name="updraft",
    )


def https_ok(url: str, ca: Path) -> bool:
    context = ssl.create_default_context(cafile=str(ca))
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as r:
            return int(r.status) == 200
    except OSError:
        return False


class Adapter:
    def __init__(self, server: ServerProcess, ca: Path, pushgateway: ServerProcess) -> None:
        self.server = server
        self.ca = ca
        self.pushgateway = pushgateway
        self.prometheus_url = ""

    @property
    def port(self) -> int:
        return self.server.port

    def push(self, value: float, *, service: str) -> None:
        registry = CollectorRegistry()
        Gauge(LOAD, "Load the e2e HPA follows.", ["service"], registry=registry).labels(
            service
        ).set(value)
        push_to_gateway(
            f"127.0.0.1:{self.pushgateway.port}", job=f"e2e-{service}", registry=registry
        )

    def push_pods(self, namespace: str, values: dict[str, float]) -> None:
        """One series per pod; replaces what was pushed for `namespace` before."""
        registry = CollectorRegistry()
        gauge = Gauge(PACKETS, "Packets per second.", ["namespace", "pod"], registry=registry)
        for pod, value in values.items():
            gauge.labels(namespace, pod).set(value)
        push_to_gateway(
            f"127.0.0.1:{self.pushgateway.port}", job=f"e2e-packets-{namespace}", registry=registry
        )

    def push_ingress(self, namespace: str, ingress: str, value: float) -> None:
        registry = CollectorRegistry()
        Gauge(REQUESTS, "Requests per second.", ["namespace", "ingress"], registry=registry).labels(
            namespace, ingress
        ).set(value)
        push_to_gateway(
            f"127.0.0.1:{self.pushgateway.port}", job=f"e2e-requests-{namespace}", registry=registry
        )


@pytest.fixture(scope="module")
def adapter(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Adapter]:
    work = tmp_path_factory.mktemp("adapter")
    base = REPO / "manifests" / "base"
    kubectl(control_plane, "apply", "--server-side", "-k", str(REPO / "manifests" / "crds"))
    for part in ("namespace.yaml", "serviceaccount.yaml", "rbac.yaml"):
        kubectl(control_plane, "apply", "--server-side", "-f", str(base / part))
    kubectl(control_plane, "wait", "--for=condition=Established", "crd/metricsources.updraft.io")
    kubeconfig = service_account_kubeconfig(control_plane, work / "kubeconfig")
    ca = pki.new_ca(work, "serving-ca")
    serving = pki.issue(
        ca,
        work,
        "serving",
        common_name=f"updraft.{SYSTEM}.svc",
        dns_names=(f"updraft.{SYSTEM}.svc", "localhost"),
        ip_addresses=("127.0.0.1",),
        server=True,
    )
    pushgateway = start_pushgateway(work / "pushgateway")
    prometheus = start_prometheus(work / "prometheus", pushgateway)
    rules = work / "custom-metrics.yaml"
    rules.write_text(orjson.dumps(custom_rules(f"http://127.0.0.1:{prometheus.port}")).decode())
    server = ServerProcess(
        name="updraft",
        binary=UPDRAFT,
        directory=work,
        args=lambda ports, _: [
            "serve",
            f"--kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports[0]}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            "--grpc-port=0",
            "--metrics-port=0",
            f"--custom-metrics-config={rules}",
            # Healthy sources re-read their Secret this often: rotation shows within a test.
            "--secret-refresh=1s",
        ],
    )
    server.start()
    adapter = Adapter(server, ca.files.cert, pushgateway)
    adapter.prometheus_url = f"http://127.0.0.1:{prometheus.port}"
    try:
        server.wait_ready(
            lambda: https_ok(f"https://localhost:{server.port}/readyz", ca.files.cert)
        )
        ca_bundle = base64.b64encode(ca.files.cert.read_bytes()).decode()
        manifest = [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "updraft", "namespace": SYSTEM},
                "spec": {
                    "type": "ExternalName",
                    "externalName": "localhost",
                    "ports": [{"name": "https", "port": server.port}],
                },
            },
            *(
                {
                    "apiVersion": "apiregistration.k8s.io/v1",
                    "kind": "APIService",
                    "metadata": {"name": name},
                    "spec": {
                        "group": group,
                        "version": version,
                        "service": {"namespace": SYSTEM, "name": "updraft", "port": server.port},
                        "caBundle": ca_bundle,
                        "groupPriorityMinimum": 100,
                        "versionPriority": priority,
                    },
                }
                for name, group, version, priority in APISERVICES
            ),
        ]
        path = work / "register.json"
        path.write_text(
            orjson.dumps({"apiVersion": "v1", "kind": "List", "items": manifest}).decode()
        )
        kubectl(control_plane, "apply", "--server-side", "--force-conflicts", "-f", str(path))
        yield adapter
    finally:
        # The APIService goes first: one whose backend is gone breaks discovery cluster-wide.
        subprocess.run(
            [
                str(binary_dir() / "kubectl"),
                f"--kubeconfig={control_plane.kubeconfig}",
                "delete",
                "--ignore-not-found",
                *(f"apiservice/{name}" for name, *_ in APISERVICES),
            ],
            capture_output=True,
            timeout=60,
        )
        server.stop()
        prometheus.stop()
        pushgateway.stop()


@pytest.fixture
def api(kube: client.ApiClient) -> Api:
    return Api(kube)


async def get_raw(kube: client.ApiClient, path: str) -> tuple[int, Any]:
    response = await kube.call_api(
        path, "GET", auth_settings=["BearerToken"], _preload_content=False
    )
    try:
        return int(response.status), orjson.loads(await response.read())
    finally:
        response.release()


def metric_source(name: str, trigger: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "updraft.io/v1alpha1",
        "kind": "MetricSource",
        "metadata": {"name": name},
        "spec": {"trigger": trigger, **spec},
    }


# Active from 2 January to 31 December (next `end`, 1 January, comes before the next `start`).
ALWAYS_ON_CRON: dict[str, Any] = {
    "type": "cron",
    "metadata": {
        "timezone": "UTC",
        "start": "0 0 2 1 *",
        "end": "0 0 1 1 *",
        "desiredReplicas": "3",
    },
}


@pytest.fixture
async def available(adapter: Adapter, kube: client.ApiClient) -> Adapter:
    registration = client.ApiregistrationV1Api(kube)

    async def is_available() -> bool | None:
        svc = await registration.read_api_service("v1beta1.external.metrics.k8s.io")
        for c in svc.status.conditions or []:
            if c.type == "Available" and c.status == "True":
                return True
        return None

    await eventually(is_available, within=60, what="the external metrics APIService Available")
    return adapter


async def test_cron_metric_through_kube_apiserver_and_status(
    available: Adapter, kube: client.ApiClient, api: Api, namespace: str
) -> None:
    await api.create(METRICSOURCES, metric_source("always-three", ALWAYS_ON_CRON), namespace)

    async def served() -> Any:
        status, doc = await get_raw(kube, f"{EXTERNAL}/namespaces/{namespace}/always-three")
        return doc if status == 200 else None

    doc = await eventually(served, within=30, what="the cron metric through kube-apiserver")
    assert doc["kind"] == "ExternalMetricValueList"
    assert [i["value"] for i in doc["items"]] == ["3"]

    async def status_written() -> Any:
        obj = await api.get(METRICSOURCES, "always-three", namespace)
        status = obj.get("status") or {}
        return status if status.get("lastValue") == "3" else None

    status = await eventually(status_written, within=30, what="MetricSource status")
    assert status["active"] is True
    [ready] = status["conditions"]
    assert (ready["type"], ready["status"]) == ("Ready", "True")

    # Another namespace cannot see it, even under the same name.
    other, _ = await get_raw(kube, f"{EXTERNAL}/namespaces/default/always-three")
    assert other == 404


async def test_bad_metricsource_gets_ready_false_and_an_event(
    available: Adapter, kube: client.ApiClient, api: Api, namespace: str
) -> None:
    broken = {"type": "cron", "metadata": {**ALWAYS_ON_CRON["metadata"], "start": "* * * *"}}
    await api.create(METRICSOURCES, metric_source("broken", broken), namespace)
    await api.create(METRICSOURCES, metric_source("fine", ALWAYS_ON_CRON), namespace)

    async def reported() -> Any:
        obj = await api.get(METRICSOURCES, "broken", namespace)
        conditions = (obj.get("status") or {}).get("conditions") or []
        return conditions[0] if conditions and conditions[0]["status"] == "False" else None

    condition = await eventually(reported, within=30, what="Ready=False on the bad MetricSource")
    assert condition["reason"] == "InvalidSpec"
    assert "spec.trigger.metadata.start" in condition["message"]

    # The Event is posted right after the status is written, so it may trail it a little.
    async def warned() -> bool | None:
        events = await client.CoreV1Api(kube).list_namespaced_event(namespace)
        found = any(
            e.reason == "InvalidSpec" and "spec.trigger.metadata.start" in e.message
            for e in events.items
        )
        return True if found else None

    await eventually(warned, within=30, what="an InvalidSpec Event naming the field")
    # The bad one is not served, and whoever asks is told why; the good one beside it is.
    status, doc = await get_raw(kube, f"{EXTERNAL}/namespaces/{namespace}/broken")
    assert status == 503
    assert doc["kind"] == "Status"
    assert f"MetricSource {namespace}/broken is invalid" in doc["message"]
    assert "spec.trigger.metadata.start" in doc["message"]

    async def fine() -> bool | None:
        code, _ = await get_raw(kube, f"{EXTERNAL}/namespaces/{namespace}/fine")
        return True if code == 200 else None

    await eventually(fine, within=30, what="the good MetricSource served")


async def ready_condition(api: Api, name: str, namespace: str) -> dict[str, Any] | None:
    obj = await api.get(METRICSOURCES, name, namespace)
    conditions = (obj.get("status") or {}).get("conditions") or []
    return conditions[0] if conditions else None


def secret(name: str, values: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": values}


UNREACHABLE = "127.0.0.1:1"
"""No server listens on port 1: a queue trigger past validation reports UpstreamError."""

SECRET_KEYS = {
    "bearerToken",
    "password",
    "customAuthValue",
    "awsSecretAccessKey",
    "awsSessionToken",
    "token",
}
"""Auth keys holding a secret: no status message may show their values."""

# scaler type, metadata, the auth keys its Secret holds, whether a real server answers here.
AUTH_CASES: list[tuple[str, dict[str, str], dict[str, str], bool]] = [
    ("prometheus", {"authModes": "bearer"}, {"bearerToken": "t0ken"}, True),
    (
        "prometheus",
        {"authModes": "basic"},
        {"username": "reader", "password": "e2e-password"},
        True,
    ),
    (
        "prometheus",
        {"authModes": "custom"},
        {"customAuthHeader": "X-Api-Key", "customAuthValue": "k3y"},
        True,
    ),
    (
        "redis",
        {"address": UNREACHABLE, "listName": "jobs", "listLength": "5"},
        {"username": "worker", "password": "e2e-password", "tls": "disable"},
        False,
    ),
    (
        "redis-streams",
        {"address": UNREACHABLE, "stream": "s", "consumerGroup": "g", "pendingEntriesCount": "5"},
        {"password": "e2e-password"},
        False,
    ),
    (
        "postgresql",
        {"host": "127.0.0.1", "port": "1", "userName": "u", "dbName": "d"}
        | {"query": "select 1", "targetQueryValue": "1"},
        {"password": "e2e-password"},
        False,
    ),
    (
        "postgresql",
        {"query": "select 1", "targetQueryValue": "1"},
        {"connection": f"postgresql://u:pw@{UNREACHABLE}/d"},
        False,
    ),
    (
        "rabbitmq",
        {"queueName": "q", "mode": "QueueLength", "value": "5", "protocol": "amqp"},
        {"host": f"amqp://{UNREACHABLE}/", "username": "u", "password": "e2e-password"},
        False,
    ),
    (
        "aws-sqs-queue",
        {"queueURL": f"http://{UNREACHABLE}/000000000000/q", "awsRegion": "eu-west-1"}
        | {"awsEndpoint": f"http://{UNREACHABLE}"},
        {
            "awsAccessKeyID": "AKIDEXAMPLE",
            "awsSecretAccessKey": "s3cret",
            "awsSessionToken": "e2e-session-token",
        },
        False,
    ),
    (
        "nats-jetstream",
        {"natsServerAddress": f"nats://{UNREACHABLE}", "account": "$G", "stream": "s"}
        | {"consumer": "c", "lagThreshold": "5"},
        {"username": "u", "password": "e2e-password"},
        False,
    ),
    (
        "nats-jetstream",
        {"natsServerAddress": f"nats://{UNREACHABLE}", "account": "$G", "stream": "s"}
        | {"consumer": "c", "lagThreshold": "5"},
        {"token": "t0ken"},
        False,
    ),
]


async def test_every_scaler_auth_key_works_through_an_authref_secret(
    available: Adapter, api: Api, namespace: str
) -> None:
    names = []
    for index, (type_, metadata, auth, _) in enumerate(AUTH_CASES):
        name = f"auth-{index}-{type_}"
        if type_ == "prometheus":
            metadata = {
                "serverAddress": available.prometheus_url,
                "query": "vector(7)",
                "threshold": "1",
            } | metadata
        await api.create(SECRETS, secret(name, auth), namespace)
        trigger = {"type": type_, "metadata": metadata, "authRef": {"name": name}}
        await api.create(METRICSOURCES, metric_source(name, trigger), namespace)
        names.append(name)

    for name, (type_, _, auth, reachable) in zip(names, AUTH_CASES, strict=True):

        async def reported(name: str = name) -> dict[str, Any] | None:
            condition = await ready_condition(api, name, namespace)
            # Past validation: Ready, or the upstream's own failure (nothing listens).
            if condition is None or condition["reason"] == "InvalidSpec":
                return None
            return condition

        what = f"{type_} with {sorted(auth)} past validation"
        condition = await eventually(reported, within=60, what=what)
        if reachable:
            assert condition["status"] == "True", condition
        else:
            assert condition["reason"] == "UpstreamError", condition
        for key in SECRET_KEYS & set(auth):
            assert auth[key] not in condition["message"]


async def test_the_prometheus_example_secret_becomes_ready(
    available: Adapter, api: Api, namespace: str
) -> None:
    """manifests/examples/prometheus-hpa.yaml's shape: bearer token from a Secret, made first."""
    await api.create(SECRETS, secret("prometheus-reader", {"bearerToken": "t0ken"}), namespace)
    trigger = {
        "type": "prometheus",
        "metadata": {
            "serverAddress": available.prometheus_url,
            "query": "vector(3)",
            "threshold": "100",
            "authModes": "bearer",
        },
        "authRef": {"name": "prometheus-reader"},
    }
    await api.create(METRICSOURCES, metric_source("http-requests", trigger), namespace)

    async def ready() -> dict[str, Any] | None:
        condition = await ready_condition(api, "http-requests", namespace)
        return condition if condition and condition["status"] == "True" else None

    await eventually(ready, within=60, what="the bearer-token MetricSource Ready")


async def test_authref_secret_missing_then_created_then_changed(
    available: Adapter, kube: client.ApiClient, api: Api, namespace: str
) -> None:
    trigger = {
        "type": "prometheus",
        "metadata": {
            "serverAddress": available.prometheus_url,
            "query": "vector(3)",
            "threshold": "1",
            "authModes": "bearer",
        },
        "authRef": {"name": "prometheus-reader"},
    }
    await api.create(METRICSOURCES, metric_source("late-secret", trigger), namespace)

    async def condition_with(text: str, status: str) -> dict[str, Any] | None:
        condition = await ready_condition(api, "late-secret", namespace)
        if condition and condition["status"] == status and text in condition["message"]:
            return condition
        return None

    missing = f"Secret {namespace}/prometheus-reader does not exist"
    condition = await eventually(
        lambda: condition_with(missing, "False"), within=60, what="the missing Secret reported"
    )
    assert condition["reason"] == "InvalidSpec"
    assert condition["message"].startswith("spec.trigger.authRef")
    # An HPA asking is told the same reason, not "not found".
    code, doc = await get_raw(kube, f"{EXTERNAL}/namespaces/{namespace}/late-secret")
    assert (code, doc["reason"]) == (503, "ServiceUnavailable")
    assert missing in doc["message"]

    # Created afterwards, without the key the trigger needs: the key is named, not the metadata.
    await api.create(SECRETS, secret("prometheus-reader", {"token": "t0ken"}), namespace)
    no_key = f'Secret {namespace}/prometheus-reader has no key "bearerToken"'
    condition = await eventually(
        lambda: condition_with(no_key, "False"), within=60, what="the missing key reported"
    )
    assert condition["message"].startswith("spec.trigger.authRef: ")
    assert "t0ken" not in condition["message"]

    # Fixed: picked up without touching the MetricSource.
    fixed = secret("prometheus-reader", {"bearerToken": "t0ken"})
    fixed["metadata"]["resourceVersion"] = (await api.get(SECRETS, "prometheus-reader", namespace))[
        "metadata"
    ]["resourceVersion"]
    await api.replace(SECRETS, fixed, namespace)
    await eventually(lambda: condition_with("", "True"), within=60, what="Ready once fixed")

    # Changed again while healthy (a rotation that breaks it): re-read within --secret-refresh.
    broken = secret("prometheus-reader", {"bearer": "t0ken"})
    broken["metadata"]["resourceVersion"] = (
        await api.get(SECRETS, "prometheus-reader", namespace)
    )["metadata"]["resourceVersion"]
    await api.replace(SECRETS, broken, namespace)
    await eventually(
        lambda: condition_with(no_key, "False"), within=60, what="the rotated Secret picked up"
    )


def direct_get(adapter: Adapter, path: str, token: str | None = None) -> tuple[int, Any]:
    """GET straight from the adapter, not through kube-apiserver (no front-proxy identity)."""
    context = ssl.create_default_context(cafile=str(adapter.ca))
    request = urllib.request.Request(f"https://localhost:{adapter.port}{path}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as r:
            return int(r.status), orjson.loads(r.read())
    except urllib.error.HTTPError as e:
        return int(e.code), orjson.loads(e.read())


async def test_unauthenticated_request_to_the_adapter_is_401(available: Adapter) -> None:
    path = f"{EXTERNAL}/namespaces/default/anything"
    code, status = await asyncio.to_thread(direct_get, available, path)
    assert code == 401
    assert status["reason"] == "Unauthorized"
    code, status = await asyncio.to_thread(direct_get, available, path, "not-a-token")
    assert code == 401


async def test_bearer_tokens_are_reviewed_and_authorized_by_kube_apiserver(
    available: Adapter, api: Api, control_plane: ControlPlane, namespace: str
) -> None:
    await api.create(METRICSOURCES, metric_source("always-three", ALWAYS_ON_CRON), namespace)
    path = f"{EXTERNAL}/namespaces/{namespace}/always-three"
    # The HPA's own account: the manifests' ClusterRoleBinding lets it read our metrics.
    hpa = await asyncio.to_thread(
        kubectl, control_plane, "create", "token", "horizontal-pod-autoscaler", "-n", "kube-system"
    )

    async def served() -> Any:
        code, body = await asyncio.to_thread(direct_get, available, path, hpa.strip())
        return body if code == 200 else None

    body = await eventually(served, within=30, what="the metric for the HPA's token")
    assert [i["value"] for i in body["items"]] == ["3"]

    # A ServiceAccount nobody granted anything: authenticated by TokenReview, then refused.
    await asyncio.to_thread(
        kubectl, control_plane, "create", "serviceaccount", "nobody", "-n", namespace
    )
    nobody = await asyncio.to_thread(
        kubectl, control_plane, "create", "token", "nobody", "-n", namespace
    )
    code, status = await asyncio.to_thread(direct_get, available, path, nobody.strip())
    assert code == 403
    assert status["reason"] == "Forbidden"
    assert f"system:serviceaccount:{namespace}:nobody" in status["message"]


@pytest.fixture
async def kwok_node(kube: client.ApiClient) -> AsyncIterator[str]:
    pool = uuid.uuid4().hex[:8]
    name = f"kwok-hpa-{pool}"
    key, value = KWOK_ANNOTATION
    resources = {"cpu": "16", "memory": "64Gi", "pods": "110"}
    core = client.CoreV1Api(kube)
    await core.create_node(
        body(
            client.V1Node,
            {
                "metadata": {
                    "name": name,
                    "annotations": {key: value},
                    "labels": {"kubernetes.io/hostname": name, "updraft.io/e2e-pool": pool},
                },
                "status": {"capacity": resources, "allocatable": resources},
            },
        )
    )
    yield pool
    await core.delete_node(name)


async def test_real_hpa_scales_up_and_down_on_a_prometheus_metric(
    available: Adapter, kube: client.ApiClient, api: Api, namespace: str, kwok_node: str
) -> None:
    service = namespace  # one series per test run
    available.push(3, service=service)
    trigger = {
        "type": "prometheus",
        "metadata": {
            "serverAddress": available.prometheus_url,
            "query": f"sum({LOAD}{{<<.LabelMatchers>>}})",
            "threshold": "1",
        },
    }
    await api.create(METRICSOURCES, metric_source("load", trigger, pollingInterval=1), namespace)
    labels = {"app": "worker"}
    await client.AppsV1Api(kube).create_namespaced_deployment(
        namespace,
        body(
            client.V1Deployment,
            {
                "metadata": {"name": "worker"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "nodeSelector": {"updraft.io/e2e-pool": kwok_node},
                            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}],
                        },
                    },
                },
            },
        ),
    )
    autoscaling = client.AutoscalingV2Api(kube)
    await autoscaling.create_namespaced_horizontal_pod_autoscaler(
        namespace,
        body(
            client.V2HorizontalPodAutoscaler,
            {
                "metadata": {"name": "worker"},
                "spec": {
                    "scaleTargetRef": {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": "worker",
                    },
                    "minReplicas": 1,
                    "maxReplicas": 6,
                    "metrics": [
                        {
                            "type": "External",
                            "external": {
                                "metric": {
                                    "name": "load",
                                    "selector": {"matchLabels": {"service": service}},
                                },
                                "target": {"type": "AverageValue", "averageValue": "1"},
                            },
                        }
                    ],
                    "behavior": {
                        "scaleDown": {
                            "stabilizationWindowSeconds": 0,
                            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 1}],
                        },
                        "scaleUp": {
                            "stabilizationWindowSeconds": 0,
                            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 1}],
                        },
                    },
                },
            },
        ),
    )

    async def replicas(wanted: int) -> int | None:
        hpa = await autoscaling.read_namespaced_horizontal_pod_autoscaler("worker", namespace)
        desired = getattr(hpa.status, "desired_replicas", None)  # no status before a sync
        return desired if desired == wanted else None

    # 3 at AverageValue 1 per replica: 3 replicas.
    await eventually(lambda: replicas(3), within=90, what="the HPA to scale worker to 3")
    available.push(1, service=service)
    await eventually(lambda: replicas(1), within=90, what="the HPA to scale worker back to 1")


# --- custom metrics from Prometheus rules (--custom-metrics-config) ---------------------------

FAST_BEHAVIOR: dict[str, Any] = {
    direction: {
        "stabilizationWindowSeconds": 0,
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 1}],
    }
    for direction in ("scaleUp", "scaleDown")
}


@pytest.fixture
async def custom_available(available: Adapter, kube: client.ApiClient) -> Adapter:
    registration = client.ApiregistrationV1Api(kube)
    for name in ("v1beta1.custom.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"):

        async def is_available(name: str = name) -> bool | None:
            svc = await registration.read_api_service(name)
            for c in svc.status.conditions or []:
                if c.type == "Available" and c.status == "True":
                    return True
            return None

        await eventually(is_available, within=60, what=f"the APIService {name} Available")
    return available


async def get_custom(kube: client.ApiClient, path: str, **query: str) -> tuple[int, Any]:
    response = await kube.call_api(
        CUSTOM + path,
        "GET",
        query_params=list(query.items()),
        auth_settings=["BearerToken"],
        _preload_content=False,
    )
    try:
        return int(response.status), orjson.loads(await response.read())
    finally:
        response.release()


async def create_deployment(
    kube: client.ApiClient, namespace: str, name: str, *, replicas: int, pool: str
) -> None:
    labels = {"app": name}
    await client.AppsV1Api(kube).create_namespaced_deployment(
        namespace,
        body(
            client.V1Deployment,
            {
                "metadata": {"name": name},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "nodeSelector": {"updraft.io/e2e-pool": pool},
                            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}],
                        },
                    },
                },
            },
        ),
    )


async def running_pods(kube: client.ApiClient, namespace: str, app: str, count: int) -> list[str]:
    """The names of `app`'s pods once exactly `count` of them run (and none is terminating)."""
    core = client.CoreV1Api(kube)

    async def probe() -> list[str] | None:
        pods = await core.list_namespaced_pod(namespace, label_selector=f"app={app}")
        live = [p for p in pods.items if getattr(p.metadata, "deletion_timestamp", None) is None]
        running = [p.metadata.name for p in live if p.status.phase == "Running"]
        return sorted(running) if len(running) == len(live) == count else None

    return await eventually(probe, within=60, what=f"{count} running {app} pods")


async def create_hpa(
    kube: client.ApiClient, namespace: str, name: str, metric: dict[str, Any], *, most: int = 6
) -> None:
    await client.AutoscalingV2Api(kube).create_namespaced_horizontal_pod_autoscaler(
        namespace,
        body(
            client.V2HorizontalPodAutoscaler,
            {
                "metadata": {"name": name},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                    "minReplicas": 1,
                    "maxReplicas": most,
                    "metrics": [metric],
                    "behavior": FAST_BEHAVIOR,
                },
            },
        ),
    )


async def hpa_at(kube: client.ApiClient, namespace: str, name: str, wanted: int) -> Any:
    """The HPA's status once its desiredReplicas is `wanted`."""
    autoscaling = client.AutoscalingV2Api(kube)
    last: list[Any] = [None]

    async def probe() -> Any:
        hpa = await autoscaling.read_namespaced_horizontal_pod_autoscaler(name, namespace)
        last[0] = hpa.status
        desired = getattr(hpa.status, "desired_replicas", None)  # no status before a sync
        return hpa.status if desired == wanted else None

    try:
        return await eventually(probe, within=90, what=f"the HPA to want {wanted} {name} replicas")
    except AssertionError as e:
        raise AssertionError(f"{e}; its last status: {last[0]}") from None


async def test_real_hpa_follows_a_pods_custom_metric(
    custom_available: Adapter, kube: client.ApiClient, namespace: str, kwok_node: str
) -> None:
    await create_deployment(kube, namespace, "packets", replicas=2, pool=kwok_node)
    pods = await running_pods(kube, namespace, "packets", 2)
    # The series name the real pods; a pod of another app in the namespace must not count.
    custom_available.push_pods(namespace, {**dict.fromkeys(pods, 2000.0), "stranger": 1e6})

    async def listed() -> Any:
        status, doc = await get_custom(kube, "/v1beta2")
        names = {r["name"] for r in doc.get("resources", [])} if status == 200 else set()
        return doc if "pods/packets-per-second" in names else None

    await eventually(listed, within=30, what="pods/packets-per-second in custom discovery")

    async def served() -> Any:
        status, doc = await get_custom(
            kube,
            f"/v1beta1/namespaces/{namespace}/pods/*/packets-per-second",
            labelSelector="app=packets",
        )
        return doc if status == 200 and len(doc["items"]) == 2 else None

    doc = await eventually(served, within=30, what="both pods' values through kube-apiserver")
    assert doc["apiVersion"] == "custom.metrics.k8s.io/v1beta1"
    assert sorted((i["describedObject"]["name"], i["value"]) for i in doc["items"]) == [
        (pod, "2k") for pod in pods
    ]

    pods_metric = {
        "type": "Pods",
        "pods": {
            "metric": {"name": "packets-per-second"},
            "target": {"type": "AverageValue", "averageValue": "1k"},
        },
    }
    await create_hpa(kube, namespace, "packets", pods_metric)
    # 2k per pod against 1k: twice the pods. The two new pods have no series yet, which the HPA
    # counts as 0 while scaling up, so it settles at 4.
    status = await hpa_at(kube, namespace, "packets", 4)
    [current] = status.current_metrics
    assert current.pods.metric.name == "packets-per-second"
    assert current.pods.current.average_value == "2k"

    pods = await running_pods(kube, namespace, "packets", 4)
    custom_available.push_pods(namespace, dict.fromkeys(pods, 250.0))
    await hpa_at(kube, namespace, "packets", 1)


async def test_real_hpa_follows_an_object_custom_metric(
    custom_available: Adapter, kube: client.ApiClient, namespace: str, kwok_node: str
) -> None:
    await client.NetworkingV1Api(kube).create_namespaced_ingress(
        namespace,
        body(
            client.V1Ingress,
            {
                "metadata": {"name": "main-route"},
                "spec": {
                    "ingressClassName": "nginx",
                    "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}},
                },
            },
        ),
    )
    await create_deployment(kube, namespace, "web", replicas=1, pool=kwok_node)
    await running_pods(kube, namespace, "web", 1)
    custom_available.push_ingress(namespace, "main-route", 25000.0)

    # Every spelling of the resource, in both versions, through kube-apiserver.
    for version, resource in (
        ("v1beta2", "ingresses.networking.k8s.io"),
        ("v1beta1", "ingresses"),
        ("v1beta1", "ingress"),
    ):
        path = f"/{version}/namespaces/{namespace}/{resource}/main-route/requests-per-second"

        async def served(path: str = path) -> Any:
            status, doc = await get_custom(kube, path)
            return doc if status == 200 else None

        doc = await eventually(served, within=30, what=f"{path} through kube-apiserver")
        [item] = doc["items"]
        assert item["describedObject"] == {
            "kind": "Ingress",
            "namespace": namespace,
            "name": "main-route",
            "apiVersion": "networking.k8s.io/v1",
        }
        assert item["value"] == "25k"
    missing, status_body = await get_custom(
        kube,
        f"/v1beta2/namespaces/{namespace}/ingresses.networking.k8s.io/other/requests-per-second",
    )
    assert (missing, status_body["reason"]) == (404, "NotFound")

    object_metric = {
        "type": "Object",
        "object": {
            "describedObject": {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "name": "main-route",
            },
            "metric": {"name": "requests-per-second"},
            "target": {"type": "Value", "value": "10k"},
        },
    }
    await create_hpa(kube, namespace, "web", object_metric, most=3)
    # A Value target compares the Ingress' total with 10k: at a steady 25k every sync proposes
    # ceil(2.5 x ready pods), so the HPA climbs to maxReplicas (3) and stays there.
    status = await hpa_at(kube, namespace, "web", 3)
    [current] = status.current_metrics
    assert current.object.described_object.name == "main-route"
    assert current.object.current.value == "25k"

    # 1k: ceil(0.1 x 3) = 1.
    custom_available.push_ingress(namespace, "main-route", 1000.0)
    await hpa_at(kube, namespace, "web", 1)
