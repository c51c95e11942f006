"""Which Deployment or StatefulSet each pod belongs to, read from the Kubernetes API.

Owns reading the cluster once (pods, ReplicaSets, Deployments, StatefulSets, DaemonSets,
NodePools, NodeClasses), following each pod's controller reference (Pod -> ReplicaSet ->
Deployment, Pod -> StatefulSet) and rewriting a pod's container requests. The API is what every
cluster has; ``kube_pod_owner`` exists only where kube-state-metrics runs, and stops at the
ReplicaSet.

Pods that are finished (Succeeded, Failed) or being deleted are left out of everything; pods of
a DaemonSet are the DaemonSets' overhead, not workload pods; any other pod (a Job's, a bare
one) is packed as it is and recommended nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kube import JSON, PODS, Api, NotFoundError, Resource
from provisioner import parse_quantity
from provisioner.objects import DAEMONSETS, NODECLASSES, NODEPOOLS

__all__ = [
    "DEPLOYMENTS",
    "REPLICASETS",
    "STATEFULSETS",
    "Cluster",
    "Workload",
    "WorkloadKey",
    "limit_below",
    "read_cluster",
    "resized",
]

DEPLOYMENTS = Resource("apps", "v1", "deployments", namespaced=True)
STATEFULSETS = Resource("apps", "v1", "statefulsets", namespaced=True)
REPLICASETS = Resource("apps", "v1", "replicasets", namespaced=True)

WorkloadKey = tuple[str, str, str]
"""(kind, namespace, name)."""


@dataclass
class Workload:
    kind: str
    namespace: str
    name: str
    containers: tuple[str, ...]
    """The pod template's containers, in order."""
    requests: dict[str, dict[str, str]]
    """Per container: the template's requests as written (``cpu``, ``memory``)."""
    limits: dict[str, dict[str, str]]
    pods: list[JSON] = field(default_factory=list)

    @property
    def key(self) -> WorkloadKey:
        return (self.kind, self.namespace, self.name)


@dataclass
class Cluster:
    workloads: dict[WorkloadKey, Workload]
    pods: list[JSON]
    """Every live pod that is not a DaemonSet's, all namespaces."""
    owner: dict[str, WorkloadKey]
    """Pod UID -> its workload."""
    daemonsets: list[JSON]
    nodepools: list[JSON]
    nodeclasses: dict[str, JSON]


def _controller(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("kind") or ""), str(ref.get("name") or "")
    return None


def _template_resources(obj: Mapping[str, Any], what: str) -> dict[str, dict[str, str]]:
    spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    out: dict[str, dict[str, str]] = {}
    for container in spec.get("containers") or []:
        section = (container.get("resources") or {}).get(what) or {}
        out[str(container.get("name"))] = {
            k: str(v) for k, v in section.items() if k in ("cpu", "memory")
        }
    return out


def _live(pod: Mapping[str, Any]) -> bool:
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    return not meta.get("deletionTimestamp") and status.get("phase") not in ("Succeeded", "Failed")


async def _list(api: Api, resource: Resource, namespace: str | None) -> list[JSON]:
    items, _ = await api.list(resource, namespace)
    return items


async def _list_if_served(api: Api, resource: Resource) -> list[JSON]:
    """Updraft's own kinds: a cluster without the CRDs has none (and nothing to simulate)."""
    try:
        return await _list(api, resource, None)
    except NotFoundError:
        return []


async def read_cluster(api: Api, *, namespace: str | None) -> Cluster:
    """The cluster as ``recommend`` needs it; workloads only in ``namespace`` when given (the
    simulation always packs every namespace's pods)."""
    pods = [p for p in await _list(api, PODS, None) if _live(p)]
    replicasets = await _list(api, REPLICASETS, namespace)
    workloads: dict[WorkloadKey, Workload] = {}
    for resource, kind in ((DEPLOYMENTS, "Deployment"), (STATEFULSETS, "StatefulSet")):
        for obj in await _list(api, resource, namespace):
            meta = obj.get("metadata") or {}
            requests = _template_resources(obj, "requests")
            workload = Workload(
                kind=kind,
                namespace=str(meta.get("namespace") or "default"),
                name=str(meta.get("name")),
                containers=tuple(requests),
                requests=requests,
                limits=_template_resources(obj, "limits"),
            )
            workloads[workload.key] = workload
    rs_owner: dict[tuple[str, str], tuple[str, str] | None] = {}
    for rs in replicasets:
        meta = rs.get("metadata") or {}
        rs_owner[(str(meta.get("namespace")), str(meta.get("name")))] = _controller(rs)
    owner: dict[str, WorkloadKey] = {}
    packed: list[JSON] = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        ns = str(meta.get("namespace") or "default")
        ref = _controller(pod)
        if ref is not None and ref[0] == "DaemonSet":
            continue
        packed.append(pod)
        if ref is not None and ref[0] == "ReplicaSet":
            ref = rs_owner.get((ns, ref[1]))
        if ref is None or ref[0] not in ("Deployment", "StatefulSet"):
            continue
        mine = workloads.get((ref[0], ns, ref[1]))
        if mine is not None:
            mine.pods.append(pod)
            owner[str(meta.get("uid"))] = mine.key
    return Cluster(
        workloads=workloads,
        pods=packed,
        owner=owner,
        daemonsets=await _list(api, DAEMONSETS, None),
        nodepools=await _list_if_served(api, NODEPOOLS),
        nodeclasses={
            str((c.get("metadata") or {}).get("name")): c
            for c in await _list_if_served(api, NODECLASSES)
        },
    )


def resized(pod: Mapping[str, Any], requests: Mapping[str, Mapping[str, str]]) -> JSON:
    """A copy of ``pod`` whose named containers request ``requests[name]`` instead (a limit
    below a new request is raised to it, as the API server would refuse it). The copy has no
    resourceVersion, so no parse cache mistakes it for the pod as it is."""
    out: JSON = copy.deepcopy(dict(pod))
    out.setdefault("metadata", {}).pop("resourceVersion", None)
    containers: Sequence[JSON] = (out.get("spec") or {}).get("containers") or []
    for container in containers:
        new = requests.get(str(container.get("name")))
        if not new:
            continue
        resources = container.setdefault("resources", {})
        resources.setdefault("requests", {}).update(new)
        limits = resources.get("limits") or {}
        for name, value in new.items():
            if name in limits and limit_below(limits[name], value):
                limits[name] = value
    return out


def limit_below(limit: object, request: str) -> bool:
    """Whether a container's ``limit`` is under a new ``request`` (the API would refuse it)."""
    return parse_quantity(limit, field="limit") < parse_quantity(request, field="request")
