"""What the simulation answers: the plan (``SimulationResult``, ``NodeClaimPlan``) and the
verdict of one placement try (``Verdict``).

Owns these value types only; it must not decide anything or import another scheduling module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from provisioner.catalog import InstanceType
from provisioner.model import Pod, Taint
from provisioner.requirements import Requirements
from provisioner.resources import Resources

__all__ = ["NodeClaimPlan", "SimulationResult", "Verdict"]


class Verdict(IntEnum):
    """Why a pod did or did not go on one node or claim, as far as the caller must know."""

    OK = 0
    """Placed."""
    TRANSIENT = 1
    """Not now: room, a zone or an affinity target may appear later in the pass."""
    PERMANENT = 2
    """Never for pods of this shape (taints, host ports, requirements, anti-affinity): the
    node or claim is left out of this shape's candidates from now on."""


@dataclass(frozen=True, slots=True, eq=False)
class NodeClaimPlan:
    """A NodeClaim to create: its pods and every instance type that could host them."""

    name: str
    nodepool: str
    requirements: Requirements
    """Pool requirements and template labels, narrowed by the pods' requirements."""
    pods: tuple[Pod, ...]
    requests: Resources
    """Pod requests plus the daemonset overhead on the cheapest option; includes ``pods``."""
    instance_types: tuple[InstanceType, ...]
    """Cheapest compatible available offering first."""
    price: float
    """USD/h of the cheapest option's cheapest compatible available offering."""
    taints: tuple[Taint, ...] = ()
    startup_taints: tuple[Taint, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SimulationResult:
    placed: tuple[tuple[Pod, str], ...]
    """Pods placed on existing or in-flight nodes, with the node (or NodeClaim) name."""
    new_claims: tuple[NodeClaimPlan, ...]
    unschedulable: tuple[tuple[Pod, str], ...]
    """Pods no node or NodePool can take, with the reason."""

    @property
    def price(self) -> float:
        """USD/h of the new NodeClaims at their cheapest options."""
        return sum(c.price for c in self.new_claims)
