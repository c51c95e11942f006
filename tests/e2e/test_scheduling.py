"""The control plane schedules for real: the scheduler marks pods that fit nowhere
Unschedulable, a kwok node makes them Run, and the HPA controller evaluates an HPA."""

from __future__ import annotations

import uuid
from typing import Any

from kubernetes_asyncio import client

from tests.cluster.controlplane import KWOK_ANNOTATION
from tests.e2e.manifests import body
from tests.e2e.waiting import eventually

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"


def _deployment(name: str, *, replicas: int, pool: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    # Only the node this test creates carries the pool label, so nodes other
                    # tests (or a reused cluster) left behind cannot take these pods.
                    "nodeSelector": {"updraft.io/e2e-pool": pool},
                    "containers": [
                        {
                            "name": "pause",
                            "image": PAUSE_IMAGE,
                            "resources": {"requests": {"cpu": "1", "memory": "64Mi"}},
                        }
                    ],
                },
            },
        },
    }


def _kwok_node(name: str, *, pool: str, cpu: str) -> dict[str, Any]:
    key, value = KWOK_ANNOTATION
    resources = {"cpu": cpu, "memory": "16Gi", "pods": "110"}
    return {
        "metadata": {
            "name": name,
            "annotations": {key: value},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "updraft.io/e2e-pool": pool,
            },
        },
        "status": {"capacity": resources, "allocatable": resources},
    }


def _condition(obj: Any, kind: str) -> Any:
    for c in obj.status.conditions or []:
        if c.type == kind:
            return c
    return None


async def test_pending_pods_run_once_a_kwok_node_appears(
    kube: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube)
    apps = client.AppsV1Api(kube)
    pool = uuid.uuid4().hex[:8]
    await apps.create_namespaced_deployment(
        namespace, body(client.V1Deployment, _deployment("cpu", replicas=3, pool=pool))
    )

    async def all_unschedulable() -> list[Any] | None:
        pods = (await core.list_namespaced_pod(namespace, label_selector="app=cpu")).items
        if len(pods) != 3:
            return None
        for pod in pods:
            cond = _condition(pod, "PodScheduled")
            if cond is None or cond.status != "False" or cond.reason != "Unschedulable":
                return None
        return list(pods)

    pending = await eventually(
        all_unschedulable, within=20, what="3 pods with PodScheduled=False/Unschedulable"
    )
    assert all(p.spec.node_name is None for p in pending)

    node_name = f"kwok-{pool}"
    await core.create_node(body(client.V1Node, _kwok_node(node_name, pool=pool, cpu="4")))
    try:

        async def all_running() -> list[Any] | None:
            pods = (await core.list_namespaced_pod(namespace, label_selector="app=cpu")).items
            if len(pods) == 3 and all(p.status.phase == "Running" for p in pods):
                return list(pods)
            return None

        running = await eventually(all_running, within=60, what="3 pods Running on the node")
        assert {p.spec.node_name for p in running} == {node_name}
        node = await core.read_node(node_name)
        ready = _condition(node, "Ready")
        assert ready is not None
        assert ready.status == "True"
    finally:
        await core.delete_node(node_name)


async def test_hpa_controller_evaluates_a_cpu_hpa(kube: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(kube)
    autoscaling = client.AutoscalingV2Api(kube)
    pool = uuid.uuid4().hex[:8]
    await apps.create_namespaced_deployment(
        namespace, body(client.V1Deployment, _deployment("web", replicas=1, pool=pool))
    )
    await autoscaling.create_namespaced_horizontal_pod_autoscaler(
        namespace,
        body(
            client.V2HorizontalPodAutoscaler,
            {
                "metadata": {"name": "web"},
                "spec": {
                    "scaleTargetRef": {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": "web",
                    },
                    "minReplicas": 1,
                    "maxReplicas": 4,
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {
                                "name": "cpu",
                                "target": {"type": "Utilization", "averageUtilization": 50},
                            },
                        }
                    ],
                },
            },
        ),
    )

    async def evaluated() -> Any:
        hpa = await autoscaling.read_namespaced_horizontal_pod_autoscaler("web", namespace)
        if _condition(hpa, "ScalingActive") is None or _condition(hpa, "AbleToScale") is None:
            return None
        return hpa

    hpa = await eventually(evaluated, within=30, what="the HPA controller to set conditions")
    # No metrics-server runs here, so the controller reports why it cannot scale: proof
    # that it read the HPA, resolved the target and asked the resource metrics API.
    assert _condition(hpa, "AbleToScale").status == "True"
    active = _condition(hpa, "ScalingActive")
    assert active.status == "False"
    assert active.reason == "FailedGetResourceMetric"
