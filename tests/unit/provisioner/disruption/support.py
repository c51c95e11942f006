"""Small hand-made clusters for the disruption decisions: NodePool, NodeClaim, Node and Pod
JSON as the API server holds them, turned into candidates by the real ``find_candidates`` and
into the simulation's inputs by the real parsers, priced from the packaged catalog."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kits.clock import format_rfc3339
from kube import JSON
from provisioner import Catalog, nodepool_from_k8s
from provisioner.claims import NodeClaimView
from provisioner.disruption.candidates import Blocked, Candidate, find_candidates
from provisioner.disruption.methods import Cluster
from provisioner.disruption.policy import PoolPolicy
from provisioner.objects import node_view

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CATALOG = Catalog.aws()
TYPES = {t.name: t for t in CATALOG.instance_types()}
SEED_TYPES = ["c5.large", "m5.large", "m5.xlarge"]


def pool_json(
    name: str = "seed",
    *,
    types: list[str] | None = None,
    after: str = "10s",
    policy: str = "WhenEmptyOrUnderutilized",
    budgets: list[JSON] | None = None,
    limits: JSON | None = None,
) -> JSON:
    return {
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {"labels": {}},
                "spec": {
                    "nodeClassRef": {"group": "updraft.io", "kind": "NodeClass", "name": "k"},
                    "requirements": [
                        {
                            "key": "node.kubernetes.io/instance-type",
                            "operator": "In",
                            "values": types or SEED_TYPES,
                        },
                        {
                            "key": "karpenter.sh/capacity-type",
                            "operator": "In",
                            "values": ["on-demand"],
                        },
                    ],
                },
            },
            "limits": limits or {"cpu": "100", "memory": "400Gi"},
            "disruption": {
                "consolidationPolicy": policy,
                "consolidateAfter": after,
                "budgets": budgets if budgets is not None else [{"nodes": "100%"}],
            },
        },
    }


_names = itertools.count()


@dataclass
class World:
    """A cluster of one or more pools: add nodes with pods, then ask for candidates."""

    pools: list[JSON] = field(default_factory=lambda: [pool_json()])
    claims: dict[str, JSON] = field(default_factory=dict)
    nodes: dict[str, JSON] = field(default_factory=dict)
    pods: dict[str, list[JSON]] = field(default_factory=dict)
    pdbs: list[JSON] = field(default_factory=list)

    def node(
        self,
        itype: str,
        pods: int = 0,
        *,
        pool: str = "seed",
        cpu: str = "1",
        idle: float = 3600.0,
        zone: str = "us-east-1a",
        pod_extra: JSON | None = None,
        node_annotations: JSON | None = None,
    ) -> str:
        """A launched, initialized node of ``itype`` holding ``pods`` pods, its last pod event
        ``idle`` seconds ago."""
        name = f"{pool}-{itype.replace('.', '-')}-{next(_names)}"
        t = TYPES[itype]
        offering = next(o for o in t.offerings if o.zone == zone and o.capacity_type == "on-demand")
        labels = {
            "updraft.io/nodepool": pool,
            "node.kubernetes.io/instance-type": itype,
            "topology.kubernetes.io/zone": zone,
            "karpenter.sh/capacity-type": "on-demand",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/os": "linux",
            "kubernetes.io/hostname": name,
        }
        alloc = {
            "cpu": f"{t.allocatable.cpu}m",
            "memory": str(t.allocatable.memory),
            "pods": str(t.allocatable.pods),
        }
        since = format_rfc3339(NOW - timedelta(seconds=idle))
        self.claims[name] = {
            "apiVersion": "updraft.io/v1alpha1",
            "kind": "NodeClaim",
            "metadata": {
                "name": name,
                "uid": f"uid-{name}",
                "labels": {"updraft.io/nodepool": pool},
                "creationTimestamp": format_rfc3339(NOW - timedelta(days=1)),
                "resourceVersion": "1",
            },
            "spec": {
                "nodeClassRef": {"group": "updraft.io", "kind": "NodeClass", "name": "k"},
                "requirements": [
                    {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": [itype]}
                ],
            },
            "status": {
                "nodeName": name,
                "providerID": f"kwok://{name}",
                "price": str(offering.price),
                "capacity": alloc,
                "allocatable": alloc,
                "lastPodEventTime": since,
                "conditions": [
                    {"type": k, "status": "True", "reason": k, "lastTransitionTime": since}
                    for k in ("Launched", "Registered", "Initialized", "Ready")
                ],
            },
        }
        self.nodes[name] = {
            "metadata": {"name": name, "labels": labels, "annotations": node_annotations or {}},
            "spec": {"providerID": f"kwok://{name}"},
            "status": {"allocatable": alloc, "capacity": alloc},
        }
        self.pods[name] = [self.pod(name, i, cpu, pod_extra) for i in range(pods)]
        return name

    @staticmethod
    def pod(node: str, i: int, cpu: str, extra: JSON | None = None) -> JSON:
        pod: JSON = {
            "metadata": {
                "name": f"{node}-p{i}",
                "namespace": "default",
                "uid": f"uid-{node}-p{i}",
                "labels": {"app": "inflate"},
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "ownerReferences": [{"kind": "ReplicaSet", "name": "inflate", "uid": "rs"}],
            },
            "spec": {
                "nodeName": node,
                "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}],
            },
            "status": {"phase": "Running"},
        }
        for key, value in (extra or {}).items():
            pod[key] = {**pod.get(key, {}), **value}
        return pod

    def parsed_pools(self) -> dict[str, Any]:
        return {str(p["metadata"]["name"]): nodepool_from_k8s(p) for p in self.pools}

    def policies(self) -> dict[str, PoolPolicy]:
        return {str(p["metadata"]["name"]): PoolPolicy.of(p) for p in self.pools}

    def candidates(self, now: datetime = NOW) -> tuple[list[Candidate], list[Blocked]]:
        return find_candidates(
            claims={n: NodeClaimView.parse(c) for n, c in self.claims.items()},
            nodes=self.nodes,
            pods_by_node=self.pods,
            pdbs=self.pdbs,
            policies=self.policies(),
            pools=self.parsed_pools(),
            nodeclass_hashes={},
            nominated={},
            now=now,
        )

    def cluster(
        self,
        settling: frozenset[str] = frozenset(),
        *,
        booting: frozenset[str] = frozenset(),
    ) -> Cluster:
        """``settling``: nodes inside consolidateAfter; ``booting``: nodes not Initialized."""
        views = [
            node_view(n, self.pods.get(name, []), initialized=name not in booting)
            for name, n in self.nodes.items()
        ]
        return Cluster(
            views=views,
            nodepools=list(self.parsed_pools().values()),
            catalog=CATALOG,
            settling=settling,
        )

    def copy(self) -> World:
        return copy.deepcopy(self)


def unlimited(world: World) -> dict[tuple[str, str], int]:
    return {
        (str(p["metadata"]["name"]), r): 1000
        for p in world.pools
        for r in ("Empty", "Drifted", "Underutilized")
    }
