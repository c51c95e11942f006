"""The cloud provider interface: what the provisioner asks of whoever runs its machines.

Owns ``CloudProvider`` (create, delete, get, list, settle, instance types) and ``Instance``
(what was launched). A provider turns one NodeClaim plus its ordered instance-type options into one
instance, falling back along the options when the first cannot be had; it never decides what
to launch beyond that. Implementations: ``kwok`` (fake nodes on a cluster's kwok).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from provisioner.catalog import Catalog, InstanceType
from provisioner.claims import NodeClaimView
from provisioner.resources import Resources

__all__ = ["CloudProvider", "Instance"]


@dataclass(frozen=True, slots=True)
class Instance:
    provider_id: str
    """``<provider>://<id>``; the Node of this instance carries it in ``spec.providerID``."""
    node_name: str
    instance_type: str
    zone: str
    capacity_type: str
    price: float
    """USD per hour of the offering launched."""
    capacity: Resources
    allocatable: Resources
    labels: Mapping[str, str] = field(default_factory=dict)


class CloudProvider(Protocol):
    name: str
    catalog: Catalog
    """Every instance type this provider can launch, with offerings and prices."""

    async def create(
        self,
        claim: NodeClaimView,
        options: Sequence[InstanceType],
        *,
        nodeclass: Mapping[str, Any] | None,
    ) -> Instance:
        """Launch one instance for ``claim``: the first of ``options`` (cheapest first) with
        an available offering the claim's requirements admit, at that type's cheapest such
        offering. Idempotent per claim: asking again returns the instance already launched.
        Raises ``InsufficientCapacityError`` when no option can be had."""
        ...

    async def delete(self, claim: NodeClaimView) -> None:
        """Start terminating ``claim``'s instance; raises ``InstanceNotFoundError`` once gone.
        Idempotent: asking again while it terminates is harmless."""
        ...

    async def settle(self, claim: NodeClaimView, node: Mapping[str, Any]) -> None:
        """What the machine does for itself once registered, before it is Initialized (kwok
        emulates the agent that removes startup taints once the node is Ready); most
        providers' machines do it themselves and this does nothing."""
        ...

    async def get(self, provider_id: str) -> Instance:
        """The instance, or ``InstanceNotFoundError``."""
        ...

    async def list(self) -> list[Instance]:
        """Every instance this provider launched for Updraft."""
        ...
