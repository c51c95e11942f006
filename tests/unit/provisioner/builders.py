"""Builders of Kubernetes JSON for the provisioner tests (parsed by the real parsing code)."""

from __future__ import annotations

from typing import Any

from provisioner import NodePool, NodeView, Pod, node_from_k8s, nodepool_from_k8s, pod_from_k8s

ON_DEMAND = {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}


def pod_dict(
    name: str,
    cpu: str = "1",
    memory: str = "1Gi",
    *,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    spec: dict[str, Any] | None = None,
    created: str = "2026-01-01T00:00:00Z",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "containers": [{"name": "app", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]
    }
    body.update(spec or {})
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "labels": labels or {},
            "creationTimestamp": created,
        },
        "spec": body,
    }


def pod(name: str, cpu: str = "1", memory: str = "1Gi", **kwargs: Any) -> Pod:
    return pod_from_k8s(pod_dict(name, cpu, memory, **kwargs))


def pods(prefix: str, count: int, cpu: str = "1", memory: str = "1Gi", **kwargs: Any) -> list[Pod]:
    return [pod(f"{prefix}-{i}", cpu, memory, **kwargs) for i in range(count)]


def nodepool(
    name: str = "default",
    *,
    requirements: list[dict[str, Any]] | None = None,
    weight: int | None = None,
    taints: list[dict[str, str]] | None = None,
    startup_taints: list[dict[str, str]] | None = None,
    labels: dict[str, str] | None = None,
    limits: dict[str, str] | None = None,
    kubelet: dict[str, Any] | None = None,
) -> NodePool:
    tspec: dict[str, Any] = {
        "requirements": requirements if requirements is not None else [ON_DEMAND],
        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
    }
    if taints:
        tspec["taints"] = taints
    if startup_taints:
        tspec["startupTaints"] = startup_taints
    if kubelet:
        tspec["kubelet"] = kubelet
    spec: dict[str, Any] = {"template": {"metadata": {"labels": labels or {}}, "spec": tspec}}
    if weight is not None:
        spec["weight"] = weight
    if limits:
        spec["limits"] = limits
    return nodepool_from_k8s({"metadata": {"name": name}, "spec": spec})


def types_in(*names: str) -> dict[str, Any]:
    return {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": list(names)}


def node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "16Gi",
    pods_max: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    bound: list[dict[str, Any]] | None = None,
) -> NodeView:
    obj = {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints or []},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": pods_max},
            "capacity": {"cpu": cpu, "memory": memory, "pods": pods_max},
        },
    }
    return node_from_k8s(obj, bound or [])
