"""Discovery documents: APIGroupList, APIGroup and APIResourceList for our two groups.

Owns the shapes of the discovery JSON and which group-versions the adapter serves. It must not
ask providers for anything (handlers pass in the metric lists) and must not touch aiohttp.

When a group has no metric at all, its resource list carries one placeholder entry, because an
empty `resources` makes client-go (kubectl, helm) warn "Got empty response for" the group on
every discovery. The placeholder has no `/`, so kube-apiserver's conversion to aggregated
discovery never has to invent a parent resource for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from adapter.providers import CUSTOM_GROUP, EXTERNAL_GROUP, CustomMetricInfo, MetricRef

EXTERNAL_PLACEHOLDER = "externalmetrics"
CUSTOM_PLACEHOLDER = "custommetrics"


@dataclass(frozen=True)
class GroupVersions:
    """A served group and its versions, the preferred one first."""

    name: str
    versions: tuple[str, ...]


EXTERNAL = GroupVersions(EXTERNAL_GROUP, ("v1beta1",))
CUSTOM = GroupVersions(CUSTOM_GROUP, ("v1beta2", "v1beta1"))
GROUPS = (CUSTOM, EXTERNAL)


def api_group(group: GroupVersions) -> dict[str, Any]:
    versions = [{"groupVersion": f"{group.name}/{v}", "version": v} for v in group.versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group.name,
        "versions": versions,
        "preferredVersion": versions[0],
    }


def api_group_list() -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [api_group(g) for g in GROUPS],
    }


def _resource(name: str, *, namespaced: bool, kind: str) -> dict[str, Any]:
    return {
        "name": name,
        "singularName": "",
        "namespaced": namespaced,
        "kind": kind,
        "verbs": ["get"],
    }


def _resource_list(group_version: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


def external_resources(metrics: Iterable[MetricRef]) -> dict[str, Any]:
    """One namespaced entry per distinct metric name, sorted."""
    kind = "ExternalMetricValueList"
    names = sorted({m.name for m in metrics if "/" not in m.name})
    resources = [_resource(n, namespaced=True, kind=kind) for n in names]
    if not resources:
        resources = [_resource(EXTERNAL_PLACEHOLDER, namespaced=True, kind=kind)]
    return _resource_list(f"{EXTERNAL_GROUP}/v1beta1", resources)


def custom_resources(version: str, metrics: Iterable[CustomMetricInfo]) -> dict[str, Any]:
    """One entry `<resource[.group]>/<metric>` per distinct pair, sorted. All entries of one
    resource share one scope (namespaced if any of its metrics is): the aggregated-discovery
    conversion rejects a group-version whose subresources disagree with their parent's scope."""
    kind = "MetricValueList"
    scope: dict[str, bool] = {}
    names: set[str] = set()
    for info in metrics:
        if "/" in info.metric:
            continue
        resource = str(info.resource)
        scope[resource] = scope.get(resource, False) or info.namespaced
        names.add(f"{resource}/{info.metric}")
    resources = [
        _resource(n, namespaced=scope[n.partition("/")[0]], kind=kind) for n in sorted(names)
    ]
    if not resources:
        resources = [_resource(CUSTOM_PLACEHOLDER, namespaced=True, kind=kind)]
    return _resource_list(f"{CUSTOM_GROUP}/{version}", resources)
