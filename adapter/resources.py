"""Kubernetes resources a custom metric can describe: a fixed RESTMapper.

Owns turning any spelling a client or a rule uses for a resource (`ingresses.networking.k8s.io`,
`ingresses`, `ingress`, `Ingress`) into one canonical `ResourceKind`: plural, group, version,
kind and scope. Custom metrics need this on both sides: the HPA names `ingresses.networking.k8s.io`
while a series carries the label `ingress`, and `describedObject` needs the kind and apiVersion.

It is a built-in table of the resources HPAs scale on or read Object metrics from, not the
cluster's discovery: the adapter works the same in standalone mode, and a custom resource can
still be named by a rule's override with its plural (it then matches only that exact spelling).
It must not talk to Kubernetes.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapter.providers import GroupResource

__all__ = ["KINDS", "ResourceKind", "resolve"]


@dataclass(frozen=True)
class ResourceKind:
    plural: str
    singular: str
    kind: str
    group: str
    version: str
    namespaced: bool

    @property
    def group_resource(self) -> GroupResource:
        return GroupResource(self.plural, self.group)

    @property
    def api_version(self) -> str:
        """As `describedObject.apiVersion` is written by the Go helpers: `group/version`, so
        core objects show `/v1`."""
        return f"{self.group}/{self.version}"


KINDS: tuple[ResourceKind, ...] = (
    ResourceKind("pods", "pod", "Pod", "", "v1", namespaced=True),
    ResourceKind("services", "service", "Service", "", "v1", namespaced=True),
    ResourceKind("namespaces", "namespace", "Namespace", "", "v1", namespaced=False),
    ResourceKind("nodes", "node", "Node", "", "v1", namespaced=False),
    ResourceKind(
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        "",
        "v1",
        namespaced=True,
    ),
    ResourceKind(
        "persistentvolumes", "persistentvolume", "PersistentVolume", "", "v1", namespaced=False
    ),
    ResourceKind(
        "replicationcontrollers",
        "replicationcontroller",
        "ReplicationController",
        "",
        "v1",
        namespaced=True,
    ),
    ResourceKind("deployments", "deployment", "Deployment", "apps", "v1", namespaced=True),
    ResourceKind("statefulsets", "statefulset", "StatefulSet", "apps", "v1", namespaced=True),
    ResourceKind("replicasets", "replicaset", "ReplicaSet", "apps", "v1", namespaced=True),
    ResourceKind("daemonsets", "daemonset", "DaemonSet", "apps", "v1", namespaced=True),
    ResourceKind("jobs", "job", "Job", "batch", "v1", namespaced=True),
    ResourceKind("cronjobs", "cronjob", "CronJob", "batch", "v1", namespaced=True),
    ResourceKind("ingresses", "ingress", "Ingress", "networking.k8s.io", "v1", namespaced=True),
    ResourceKind(
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        "autoscaling",
        "v2",
        namespaced=True,
    ),
    ResourceKind(
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        "policy",
        "v1",
        namespaced=True,
    ),
)

_BY_NAME: dict[str, list[ResourceKind]] = {}
for _kind in KINDS:
    for _name in {_kind.plural, _kind.singular, _kind.kind.lower()}:
        _BY_NAME.setdefault(_name, []).append(_kind)


def resolve(resource: GroupResource) -> ResourceKind | None:
    """The resource `resource` names (case-insensitively; plural, singular or kind), or None.
    An empty group matches any group, as a RESTMapper's does."""
    for candidate in _BY_NAME.get(resource.resource.lower(), ()):
        if not resource.group or resource.group.lower() == candidate.group:
            return candidate
    return None
