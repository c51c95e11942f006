"""Scenario 6: `manifests/overlays/with-keda` beside the real KEDA v2.21.0.

README's "Beside KEDA" steps (between the `with-keda-steps` markers) run in order, exactly as
written, after the `keda` fixture has made KEDA's metrics apiserver the cluster's
external.metrics.k8s.io. What this machine cannot do is stood in for between steps, as in
tests/e2e/test_deploy.py: the overlay's Deployment is played by the same `updraft serve`,
out of cluster, with the rendered Deployment's own arguments, the `updraft` ServiceAccount's
token, the Secret `updraft certs` wrote and the ConfigMap the step created (its
`prometheus.url`, a cluster DNS name, pointed at a local Prometheus); the Service becomes an
ExternalName for localhost. Pods run on a kwok node, and counters grow in a pushgateway as
the pods' and ingress-nginx's own metrics would.

Then both owners' APIServices are Available, the example's Pods and Object HPAs scale their
Deployments on Updraft's custom metrics, and a ScaledObject on Updraft's gRPC door gets an HPA
from KEDA that scales its Deployment on the external metric KEDA serves.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from tests.cluster.controlplane import KWOK_ANNOTATION, REPO, ControlPlane, binary_dir
from tests.e2e.keda.conftest import EXTERNAL_APISERVICE, SYSTEM, Keda, Updraft, apply, kubectl
from tests.e2e.keda.test_keda_client import deployment, scaled_object, tls_auth
from tests.e2e.test_deploy import StandIn, Steps, readme_steps
from tests.e2e.test_metrics_api import ALWAYS_ON_CRON, get_raw, running_pods
from tests.e2e.waiting import eventually
from tests.servers.process import ServerProcess
from tests.servers.prometheus import start_prometheus, start_pushgateway, visible

OVERLAY = "manifests/overlays/with-keda"
CUSTOM_APISERVICES = ("v1beta1.custom.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io")
RULES_CONFIGMAP = "updraft-custom-metrics"
PROMETHEUS_IN_CLUSTER = "http://prometheus.monitoring:9090"
"""examples/custom-metrics-rules.yaml's `prometheus.url`: no cluster DNS here."""
PACKETS_PER_SECOND = 1500.0
"""One `packets` pod at 1.5x the example's 1k target: the HPA wants 2."""
REQUESTS_PER_SECOND = 15000.0
"""The Ingress at 1.5x the example's 10k target: the HPA scales `web` up."""
NODE = "kwok-with-keda"


class Counters:
    """Cumulative counters in the pushgateway, each growing at its rate, pushed every second
    (what the pods' and ingress-nginx's own /metrics would show): the example rules take
    their rate()."""

    def __init__(self, pushgateway: ServerProcess) -> None:
        self.address = f"127.0.0.1:{pushgateway.port}"
        self.pods: dict[str, float] = {}
        self.ingresses: dict[str, float] = {}
        self._start = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="counters", daemon=True)

    def push(self) -> None:
        registry = CollectorRegistry()
        packets = Gauge("packets_total", "Packets.", ["namespace", "pod"], registry=registry)
        requests = Gauge(
            "nginx_ingress_controller_requests",
            "Requests.",
            ["namespace", "ingress"],
            registry=registry,
        )
        elapsed = time.monotonic() - self._start
        for pod, rate in dict(self.pods).items():
            packets.labels("default", pod).set(rate * elapsed)
        for ingress, rate in dict(self.ingresses).items():
            requests.labels("default", ingress).set(rate * elapsed)
        push_to_gateway(self.address, job="e2e-with-keda", registry=registry)

    def _run(self) -> None:
        while not self._stop.wait(1.0):  # the period of a counter's samples
            self.push()

    def start(self) -> None:
        self.push()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)


def rendered_container(cp: ControlPlane) -> tuple[dict[str, Any], dict[str, str]]:
    """The overlay's updraft container, as `kubectl apply -k` creates it, and the ConfigMap
    each of its ConfigMap volumes is mounted from, by mount path."""
    out = kubectl(cp, "kustomize", str(REPO / OVERLAY))
    (doc,) = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "Deployment"]
    pod = doc["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    configmaps = {
        m["mountPath"]: volumes[m["name"]]["configMap"]["name"]
        for m in container["volumeMounts"]
        if "configMap" in volumes[m["name"]]
    }
    return container, configmaps


@dataclass
class WithKeda:
    steps: Steps
    stand_in: StandIn
    counters: Counters
    lines: list[str]
    outputs: dict[str, str] = field(default_factory=dict)


def kwok_node(cp: ControlPlane, work: Path) -> None:
    key, value = KWOK_ANNOTATION
    resources = {"cpu": "32", "memory": "128Gi", "pods": "110"}
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE,
            "annotations": {key: value},
            "labels": {"kubernetes.io/hostname": NODE},
        },
        "status": {"capacity": resources, "allocatable": resources},
    }
    path = work / "node.json"
    path.write_text(orjson.dumps(node).decode())
    kubectl(cp, "create", "-f", str(path))


def cleanup(cp: ControlPlane) -> None:
    # The APIServices go first: one whose backend is gone breaks discovery cluster-wide. KEDA's
    # external one belongs to the `keda` fixture.
    for what in (
        [f"apiservice/{name}" for name in CUSTOM_APISERVICES],
        ["-n", "default", "hpa/packets", "hpa/web", "ingress/main-route"],
        ["-n", "default", "deployment/packets", "deployment/web"],
        ["-n", SYSTEM, "service/updraft", "secret/updraft-serving-cert", "deployment/updraft"],
        ["-n", SYSTEM, f"configmap/{RULES_CONFIGMAP}"],
        [f"node/{NODE}"],
    ):
        subprocess.run(
            [str(binary_dir() / "kubectl"), f"--kubeconfig={cp.kubeconfig}", "delete",
             "--ignore-not-found", "--wait=false", *what],
            capture_output=True,
            timeout=60,
        )  # fmt: skip


@pytest.fixture(scope="module")
def with_keda(
    control_plane: ControlPlane, keda: Keda, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WithKeda]:
    work = tmp_path_factory.mktemp("with-keda")
    lines = readme_steps("with-keda-steps")
    container, configmaps = rendered_container(control_plane)
    assert set(configmaps.values()) == {RULES_CONFIGMAP}, configmaps
    mounts = {path: work / "configmaps" / name for path, name in configmaps.items()}
    stand_in = StandIn(
        control_plane,
        work,
        container=container,
        grpc=True,
        mounts=mounts,
        apiservices=CUSTOM_APISERVICES,
    )
    pushgateway = start_pushgateway(work / "pushgateway")
    prometheus = start_prometheus(work / "prometheus", pushgateway)
    counters = Counters(pushgateway)
    # Discovery lists series names: a pod of no Deployment makes `packets` known before the
    # adapter's first relist (the example's relistInterval is a minute).
    counters.pods["not-a-packets-pod"] = 1.0
    counters.ingresses["main-route"] = REQUESTS_PER_SECOND
    counters.start()
    for series in ("packets_total", "nginx_ingress_controller_requests"):
        prometheus.wait_ready(visible(prometheus.port, series), what=f"scraping {series}")

    def mount_the_configmap() -> None:
        """What the kubelet would mount, with the in-cluster Prometheus moved to this one."""
        data = orjson.loads(
            kubectl(control_plane, "-n", SYSTEM, "get", f"configmap/{RULES_CONFIGMAP}", "-o",
                    "json")
        )["data"]  # fmt: skip
        assert PROMETHEUS_IN_CLUSTER in data["rules.yaml"]
        for local in mounts.values():
            local.mkdir(parents=True, exist_ok=True)
            for key, text in data.items():
                here = text.replace(PROMETHEUS_IN_CLUSTER, f"http://127.0.0.1:{prometheus.port}")
                (local / key).write_text(here)

    steps = Steps(control_plane)
    steps.after = {
        f"kubectl apply --server-side -k {OVERLAY}": stand_in.replace_the_pod_network,
        f"kubectl -n {SYSTEM} create configmap {RULES_CONFIGMAP} ": mount_the_configmap,
        "updraft certs ": stand_in.start_from_the_secret,
    }
    kwok_node(control_plane, work)
    try:
        for line in lines:
            steps.must(line)
            for prefix, hook in steps.after.items():
                if line.startswith(prefix):
                    hook()
        yield WithKeda(steps, stand_in, counters, lines)
    finally:
        cleanup(control_plane)
        counters.stop()
        stand_in.server.stop()
        prometheus.stop()
        pushgateway.stop()


def test_both_owners_apiservices_available(with_keda: WithKeda) -> None:
    assert any(
        line.startswith(f"kubectl apply --server-side -k {OVERLAY}") for line in with_keda.lines
    )
    shown = next(
        v for k, v in with_keda.steps.outputs.items() if k.startswith("kubectl get apiservice")
    )
    assert re.search(
        rf"{re.escape(EXTERNAL_APISERVICE)}\s+keda/keda-metrics-apiserver\s+True", shown
    ), shown
    for name in CUSTOM_APISERVICES:
        assert re.search(rf"{re.escape(name)}\s+{SYSTEM}/updraft\s+True", shown), shown


async def replicas(kube: client.ApiClient, namespace: str, name: str) -> int:
    scale = await client.AppsV1Api(kube).read_namespaced_deployment_scale(name, namespace)
    return int(scale.spec.replicas or 0)


async def test_pods_and_object_hpas_scale_on_updraft_custom_metrics(
    with_keda: WithKeda, kube: client.ApiClient
) -> None:
    (pod,) = await running_pods(kube, "default", "packets", 1)
    with_keda.counters.pods[pod] = PACKETS_PER_SECOND
    hpas = client.AutoscalingV2Api(kube)

    async def scaled(name: str, least: int) -> Any:
        hpa = await hpas.read_namespaced_horizontal_pod_autoscaler(name, "default")
        if await replicas(kube, "default", name) < least or not hpa.status.current_metrics:
            return None
        return hpa.status.current_metrics[0]

    packets = await eventually(
        lambda: scaled("packets", 2), within=180, what="HPA packets to scale its Deployment to 2"
    )
    assert packets.type == "Pods"
    assert packets.pods.metric.name == "packets-per-second"
    web = await eventually(
        lambda: scaled("web", 2), within=180, what="HPA web to scale its Deployment up"
    )
    assert web.type == "Object"
    assert web.object.metric.name == "requests-per-second"
    assert web.object.described_object.name == "main-route"


async def test_scaledobject_hpa_scales_on_the_external_metric_keda_serves(
    with_keda: WithKeda, control_plane: ControlPlane, keda: Keda, kube: client.ApiClient,
    namespace: str,
) -> None:  # fmt: skip
    """A trigger on Updraft's gRPC door (the stand-in's, with the CA `updraft certs` wrote):
    KEDA's HPA reads it through KEDA's external.metrics.k8s.io."""
    stand_in = with_keda.stand_in
    metadata = {
        "scalerAddress": f"localhost:{stand_in.grpc_port}",
        "enableTLS": "true",
        "scalerType": "cron",
        **ALWAYS_ON_CRON["metadata"],
    }
    ca = Updraft(stand_in.server, stand_in.mount / "ca.crt")
    items = [*tls_auth(ca), deployment("keda-web"), scaled_object("keda-web", metadata)]
    apply(control_plane, keda.work, f"{namespace}-with-keda", items, namespace=namespace)

    async def at_three() -> bool | None:
        return True if await replicas(kube, namespace, "keda-web") == 3 else None

    await eventually(at_three, within=180, what="keda-web scaled to 3 by KEDA's HPA")
    hpa = await client.AutoscalingV2Api(kube).read_namespaced_horizontal_pod_autoscaler(
        "keda-hpa-keda-web", namespace
    )
    (metric,) = hpa.spec.metrics
    assert metric.type == "External"
    name = metric.external.metric.name
    assert name.startswith("s0-")
    selector = "scaledobject.keda.sh/name=keda-web"
    status, doc = await get_raw(
        kube,
        f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{name}?labelSelector={selector}",
    )
    assert status == 200, doc
    assert [i["value"] for i in doc["items"]] == ["3"]
