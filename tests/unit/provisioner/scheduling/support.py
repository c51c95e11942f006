"""What the scheduling tests share: one way to run the simulation, and readers of its plan."""

from __future__ import annotations

from typing import Any

from provisioner import Pod
from provisioner.labels import ZONE
from provisioner.scheduling import NodeClaimPlan, SimulationResult, simulate

from ..brute_force import CATALOG
from ..builders import pod_dict

ZONES_ABC = {"key": ZONE, "operator": "In", "values": ["us-east-1a", "us-east-1b", "us-east-1c"]}


def run(pending: list[Pod], pools: Any, **kwargs: Any) -> SimulationResult:
    return simulate(pending, nodepools=pools, catalog=CATALOG, **kwargs)


def names(claim: NodeClaimPlan) -> list[str]:
    return sorted(p.name for p in claim.pods)


def zone_of(claim: NodeClaimPlan) -> str:
    return claim.requirements[ZONE].single_value() or "?"


def bound(name: str, cpu: str, **kwargs: Any) -> dict[str, Any]:
    """A pod already bound to a node (for ``builders.node``)."""
    return pod_dict(name, cpu, "512Mi", **kwargs)
