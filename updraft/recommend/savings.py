"""What a set of requests costs in nodes: the provisioning simulation, asked from scratch.

Owns turning the cluster's pods (as they are, or with some re-sized) into one
``provisioner.simulate`` call against the cluster's NodePools and the catalog, and reading the
plan back as nodes and $/h. Both sides of a comparison are packed the same way, from no nodes
at all: the nodes the cluster runs today were launched for pods that came and went, so only a
fresh packing of today's requests is a fair baseline for a fresh packing of the new ones.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kube import JSON
from provisioner import (
    Catalog,
    InvalidFieldError,
    NodePool,
    Pod,
    pod_from_k8s,
    pod_from_template,
    simulate,
)
from provisioner.objects import nodeclass_name, validate_nodepool

__all__ = ["Packing", "pack", "usable_pools"]

log = logging.getLogger("updraft.recommend")


@dataclass(frozen=True, slots=True)
class Packing:
    nodes: int
    price: float
    """USD/h of the nodes at their cheapest options."""
    unschedulable: int
    """Pods no NodePool can take (they count for nothing here, either side)."""
    instance_types: Mapping[str, int] = field(default_factory=dict)
    """How many nodes of each type."""


def usable_pools(
    nodepools: Sequence[JSON], nodeclasses: Mapping[str, JSON], catalog: Catalog
) -> tuple[list[NodePool], list[str]]:
    """The NodePools the provisioner would use (validated as its controller does, NodeClass
    zones folded in) and one line per pool left out, naming the bad field."""
    pools, problems = [], []
    for obj in nodepools:
        meta = obj.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        try:
            pools.append(validate_nodepool(obj, nodeclasses.get(nodeclass_name(obj)), catalog))
        except InvalidFieldError as e:
            problems.append(f"NodePool {meta.get('name')}: {e}")
    return pools, problems


def _parsed(objs: Sequence[Mapping[str, Any]], *, template: bool = False) -> list[Pod]:
    out = []
    for obj in objs:
        try:
            out.append(pod_from_template(obj) if template else pod_from_k8s(obj))
        except InvalidFieldError as e:
            meta = obj.get("metadata") or {}
            log.warning(
                "%s/%s left out of the simulation: %s", meta.get("namespace"), meta.get("name"), e
            )
    return out


def pack(
    pods: Sequence[Mapping[str, Any]],
    *,
    nodepools: Sequence[NodePool],
    catalog: Catalog,
    daemonsets: Sequence[Mapping[str, Any]] = (),
) -> Packing:
    """The nodes and $/h a fresh simulation needs for ``pods`` (Kubernetes JSON)."""
    result = simulate(
        _parsed(pods),
        nodepools=nodepools,
        catalog=catalog,
        daemonsets=_parsed(daemonsets, template=True),
    )
    types = Counter(c.instance_types[0].name for c in result.new_claims if c.instance_types)
    return Packing(
        nodes=len(result.new_claims),
        price=result.price,
        unschedulable=len(result.unschedulable),
        instance_types=dict(sorted(types.items())),
    )
