"""The recommendation report: usage history and the cluster in, one report out, in three forms.

Owns attributing each container's history to its workload (a pod that is gone is still its
Deployment's when it is named ``<deployment>-<pod-template-hash>-<suffix>``, or its
StatefulSet's when named after it plus an ordinal), one ``sizing.recommend`` per workload
container, one simulation per re-sized workload and one with every workload re-sized, and
printing: a table, JSON, and YAML a user can apply (``kubectl apply --server-side``): one partial
Deployment/StatefulSet per changed workload holding only its containers' resources.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import yaml

from kits import format_duration, format_rfc3339
from provisioner import Catalog, NodePool, format_cpu, format_quantity
from updraft.recommend.savings import Packing, pack
from updraft.recommend.sizing import (
    ContainerUsage,
    Recommendation,
    SizingPolicy,
    interval_peaks,
    recommend,
)
from updraft.recommend.usage import History, UsageQuery
from updraft.recommend.workloads import Cluster, Workload, WorkloadKey, limit_below, resized

__all__ = [
    "ContainerReport",
    "Report",
    "WorkloadReport",
    "attribute",
    "build_report",
    "to_json",
    "to_patch",
    "to_table",
]

_STS_POD = re.compile(r"^(?P<name>.+)-\d+$")
_DEPLOYMENT_POD = re.compile(
    r"^(?P<name>.+)-[bcdfghjklmnpqrstvwxz2456789]{1,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$"
)
"""<deployment>-<pod-template-hash>-<suffix>: both drawn from the alphabet the apiserver's
name generator and the hash's encoding use (no vowels, no 0, 1, 3), which a CronJob's Job
(``<name>-<minutes since the epoch>``) rarely matches."""


@dataclass(frozen=True, slots=True)
class ContainerReport:
    name: str
    current: Mapping[str, str]
    """The template's requests as written (``cpu``, ``memory``; either may be absent)."""
    recommended: Mapping[str, str]
    """The new requests; a resource without samples keeps its current request."""
    sizing: Recommendation


@dataclass
class WorkloadReport:
    workload: Workload
    containers: list[ContainerReport]
    packing: Packing | None = None
    """The cluster with only this workload re-sized; None without usable NodePools."""

    @property
    def changed(self) -> bool:
        return any(
            c.recommended.get(r) != c.current.get(r) for c in self.containers for r in c.recommended
        )


@dataclass
class Report:
    query: UsageQuery
    policy: SizingPolicy
    workloads: list[WorkloadReport]
    today: Packing | None = None
    resized: Packing | None = None
    """Every workload re-sized at once."""
    problems: list[str] = field(default_factory=list)
    """NodePools left out, and why."""


def _owner_of(cluster: Cluster) -> Callable[[str, str], WorkloadKey | None]:
    by_pod: dict[tuple[str, str], WorkloadKey] = {}
    for workload in cluster.workloads.values():
        for pod in workload.pods:
            by_pod[(workload.namespace, str(pod["metadata"]["name"]))] = workload.key
    # A gone pod of a Deployment is named after a ReplicaSet of it; the pods the cluster still
    # has tell which ReplicaSet names belong to which Deployment, and so do the names the
    # Deployment controller gives ReplicaSets (<deployment>-<pod-template-hash>).
    deployments = {
        (w.namespace, w.name): w.key for w in cluster.workloads.values() if w.kind == "Deployment"
    }
    statefulsets = {
        (w.namespace, w.name): w.key for w in cluster.workloads.values() if w.kind == "StatefulSet"
    }

    live = {(str(p["metadata"].get("namespace")), str(p["metadata"]["name"])) for p in cluster.pods}

    def owner(namespace: str, pod: str) -> WorkloadKey | None:
        if (namespace, pod) in by_pod:
            return by_pod[(namespace, pod)]
        if (namespace, pod) in live:
            return None  # a pod of something else (a Job, a bare pod)
        match = _DEPLOYMENT_POD.match(pod)
        if match is not None and (namespace, match["name"]) in deployments:
            return deployments[(namespace, match["name"])]
        match = _STS_POD.match(pod)
        if match is not None and (namespace, match["name"]) in statefulsets:
            return statefulsets[(namespace, match["name"])]
        return None

    return owner


def attribute(
    cluster: Cluster, history: History, *, query: UsageQuery, policy: SizingPolicy
) -> dict[WorkloadKey, dict[str, ContainerUsage]]:
    """Each workload container's usage: CPU samples and memory peaks of all its pods."""
    owner = _owner_of(cluster)
    cpu: dict[tuple[WorkloadKey, str], list[float]] = defaultdict(list)
    peaks: dict[tuple[WorkloadKey, str], list[float]] = defaultdict(list)
    for (namespace, pod, container), points in history.cpu.items():
        key = owner(namespace, pod)
        if key is not None:
            cpu[(key, container)].extend(v for _, v in points)
    for (namespace, pod, container), points in history.memory.items():
        key = owner(namespace, pod)
        if key is not None:
            peaks[(key, container)].extend(
                interval_peaks(points, start=query.start, interval=policy.memory_interval)
            )
    out: dict[WorkloadKey, dict[str, ContainerUsage]] = {}
    for key, workload in cluster.workloads.items():
        out[key] = {
            name: ContainerUsage(
                cpu=cpu.get((key, name), []), memory_peaks=peaks.get((key, name), [])
            )
            for name in workload.containers
        }
    return out


def _recommended(current: Mapping[str, str], sizing: Recommendation) -> dict[str, str]:
    out = dict(current)
    if sizing.cpu_millis is not None:
        out["cpu"] = format_cpu(sizing.cpu_millis)
    if sizing.memory_bytes is not None:
        out["memory"] = format_quantity(sizing.memory_bytes)
    return out


def _requests(report: WorkloadReport) -> dict[str, dict[str, str]]:
    return {c.name: dict(c.recommended) for c in report.containers if c.recommended}


def build_report(
    cluster: Cluster,
    history: History,
    *,
    query: UsageQuery,
    policy: SizingPolicy,
    nodepools: list[NodePool],
    catalog: Catalog,
    problems: list[str] | None = None,
) -> Report:
    """Recommendations for every workload with history, and (with ``nodepools``) what each
    one's new requests, and all of them together, would need against today's."""
    usage = attribute(cluster, history, query=query, policy=policy)
    reports = []
    for key, workload in sorted(
        cluster.workloads.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])
    ):
        containers = []
        for name in workload.containers:
            sizing = recommend(usage[key][name], containers=len(workload.containers), policy=policy)
            if sizing.cpu_samples == 0 and sizing.memory_samples == 0:
                continue
            current = workload.requests.get(name, {})
            containers.append(
                ContainerReport(
                    name=name,
                    current=current,
                    recommended=_recommended(current, sizing),
                    sizing=sizing,
                )
            )
        if containers:
            reports.append(WorkloadReport(workload=workload, containers=containers))
    report = Report(query=query, policy=policy, workloads=reports, problems=list(problems or []))
    if not nodepools:
        return report

    def packed(changes: Mapping[WorkloadKey, dict[str, dict[str, str]]]) -> Packing:
        pods = [
            resized(p, changes[cluster.owner[uid]])
            if (uid := str(p["metadata"].get("uid"))) in cluster.owner
            and cluster.owner[uid] in changes
            else p
            for p in cluster.pods
        ]
        return pack(pods, nodepools=nodepools, catalog=catalog, daemonsets=cluster.daemonsets)

    report.today = packed({})
    for r in reports:
        r.packing = packed({r.workload.key: _requests(r)}) if r.changed else report.today
    report.resized = packed({r.workload.key: _requests(r) for r in reports if r.changed})
    return report


# --- output ---------------------------------------------------------------------------------


def _packing_json(packing: Packing | None) -> dict[str, Any] | None:
    if packing is None:
        return None
    return {
        "nodes": packing.nodes,
        "pricePerHour": round(packing.price, 6),
        "unschedulablePods": packing.unschedulable,
        "instanceTypes": dict(packing.instance_types),
    }


def _saving(today: Packing | None, new: Packing | None) -> float | None:
    if today is None or new is None:
        return None
    return round(today.price - new.price, 6)


def _moment(seconds: float) -> str:
    return format_rfc3339(datetime.fromtimestamp(seconds, tz=UTC))


def to_json(report: Report) -> str:
    q, p = report.query, report.policy
    document = {
        "window": {
            "start": _moment(q.start),
            "end": _moment(q.end),
            "step": format_duration(q.step),
            "rateWindow": format_duration(q.rate_window),
        },
        "policy": {
            "cpuPercentile": p.cpu_percentile,
            "memoryPercentile": p.memory_percentile,
            "memoryInterval": format_duration(p.memory_interval),
            "margin": p.margin,
            "minCPU": format_cpu(p.min_cpu_millis),
            "minMemory": format_quantity(p.min_memory_bytes),
        },
        "today": _packing_json(report.today),
        "recommended": _packing_json(report.resized),
        "savingPerHour": _saving(report.today, report.resized),
        "problems": report.problems,
        "workloads": [
            {
                "kind": r.workload.kind,
                "namespace": r.workload.namespace,
                "name": r.workload.name,
                "pods": len(r.workload.pods),
                "containers": [
                    {
                        "name": c.name,
                        "current": dict(c.current),
                        "recommended": dict(c.recommended),
                        "cpuPercentileCores": c.sizing.cpu_percentile_cores,
                        "memoryPercentileBytes": c.sizing.memory_percentile_bytes,
                        "cpuSamples": c.sizing.cpu_samples,
                        "memoryPeaks": c.sizing.memory_samples,
                    }
                    for c in r.containers
                ],
                "simulation": _packing_json(r.packing),
                "savingPerHour": _saving(report.today, r.packing),
            }
            for r in report.workloads
        ],
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"


def _change(before: str | None, after: str | None) -> str:
    before, after = before or "-", after or "-"
    return before if before == after else f"{before} -> {after}"


def _price(value: float) -> str:
    return f"{value:.4f}"


def to_table(report: Report) -> str:
    header = ("WORKLOAD", "CONTAINER", "CPU", "MEMORY", "NODES", "$/H", "SAVING $/H")
    rows: list[tuple[str, ...]] = [header]
    today = report.today
    for r in report.workloads:
        w = r.workload
        for i, c in enumerate(r.containers):
            nodes = price = saving = ""
            if i == 0 and today is not None and r.packing is not None:
                nodes = _change(str(today.nodes), str(r.packing.nodes))
                price = _change(_price(today.price), _price(r.packing.price))
                saving = _price(today.price - r.packing.price)
            rows.append(
                (
                    f"{w.namespace}/{w.kind.lower()}/{w.name}" if i == 0 else "",
                    c.name,
                    _change(c.current.get("cpu"), c.recommended.get("cpu")),
                    _change(c.current.get("memory"), c.recommended.get("memory")),
                    nodes,
                    price,
                    saving,
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    if not report.workloads:
        lines.append("(no Deployment or StatefulSet has usage history in the window)")
    if today is not None and report.resized is not None:
        nodes = _change(str(today.nodes), str(report.resized.nodes))
        lines.append("")
        lines.append(
            f"all workloads re-sized: nodes {nodes}, "
            f"$/h {_change(_price(today.price), _price(report.resized.price))} "
            f"(saves {_price(today.price - report.resized.price)} $/h)"
        )
    elif today is None:
        lines.append("")
        lines.append("(no usable NodePool: nodes and $/h not simulated)")
    lines.extend(report.problems)
    return "\n".join(lines) + "\n"


def to_patch(report: Report) -> str:
    """One partial object per changed workload: ``kubectl apply --server-side -f`` it."""
    docs = []
    for r in report.workloads:
        if not r.changed:
            continue
        w = r.workload
        containers = []
        for c in r.containers:
            resources: dict[str, Any] = {"requests": dict(c.recommended)}
            limits = {
                k: v
                for k, v in c.recommended.items()
                if k in w.limits.get(c.name, {}) and limit_below(w.limits[c.name][k], v)
            }
            if limits:
                resources["limits"] = limits
            containers.append({"name": c.name, "resources": resources})
        docs.append(
            {
                "apiVersion": "apps/v1",
                "kind": w.kind,
                "metadata": {"name": w.name, "namespace": w.namespace},
                "spec": {"template": {"spec": {"containers": containers}}},
            }
        )
    if not docs:
        return ""
    return yaml.safe_dump_all(docs, sort_keys=False)
