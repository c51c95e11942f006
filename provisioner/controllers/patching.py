"""Writes on a NodeClaim that more than one controller makes: its status conditions, its Events.

Owns patching a NodeClaim's status (fields plus conditions, transition times kept when the
status does not change), recording an Event on it, and the ``DisruptionBlocked`` series on a
claim and its Node; status writes are remembered in the cluster state so the next pass sees
them before the watch echoes them. It must not decide what to write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kube import JSON, Api, ConflictError, EventSeries, record_event
from provisioner.claims import NodeClaimView
from provisioner.controllers.nodepools import COMPONENT
from provisioner.controllers.state import ClusterState
from provisioner.objects import API_VERSION, NODECLAIMS, with_condition

__all__ = [
    "claim_event",
    "claim_object",
    "disruption_blocked",
    "node_object",
    "patch_claim_status",
]

ConditionChange = tuple[str, bool, str, str]
"""(type, status, reason, message) of one condition to set."""


def _status_patch(
    claim: NodeClaimView, fields: JSON, conditions: tuple[ConditionChange, ...]
) -> JSON:
    current = [c.to_k8s() for c in claim.conditions.values()]
    for kind, status, reason, message in conditions:
        current = with_condition(current, kind, status=status, reason=reason, message=message)
    return {
        "metadata": {"resourceVersion": claim.meta.resource_version},
        "status": {**fields, "conditions": current},
    }


async def patch_claim_status(
    api: Api, state: ClusterState, claim: NodeClaimView, fields: JSON, *conditions: ConditionChange
) -> NodeClaimView:
    """``claim`` with ``fields`` and ``conditions`` written to its status, as now stored.

    The write carries ``claim``'s resourceVersion: a merge patch replaces the conditions list
    whole, so a write made from a stale read would drop a condition another controller set
    since (a lifecycle's Initialized, a drain's Drained). On a conflict it is made again, once,
    from a fresh read; a second conflict (``ConflictError``) is the caller's to retry later.
    """
    try:
        updated = await api.patch_status(
            NODECLAIMS, claim.name, _status_patch(claim, fields, conditions)
        )
    except ConflictError:
        fresh = state.note(await api.get(NODECLAIMS, claim.name))
        if fresh is None:
            raise
        claim = fresh
        updated = await api.patch_status(
            NODECLAIMS, claim.name, _status_patch(claim, fields, conditions)
        )
    # A write of ours that does not parse is in ``rejected``; go on from what we had.
    return state.note(updated) or claim


def claim_object(claim: NodeClaimView | JSON) -> JSON:
    """The full object an Event about ``claim`` names."""
    raw = claim.raw if isinstance(claim, NodeClaimView) else claim
    return {**raw, "apiVersion": API_VERSION, "kind": "NodeClaim"}


def node_object(node: Mapping[str, Any]) -> JSON:
    """The full object an Event about ``node`` (as the informer keeps it) names."""
    return {**node, "apiVersion": "v1", "kind": "Node"}


async def claim_event(
    api: Api, claim: NodeClaimView | JSON, type_: str, reason: str, message: str
) -> None:
    await record_event(
        api, claim_object(claim), type_=type_, reason=reason, message=message, component=COMPONENT
    )


async def disruption_blocked(
    events: EventSeries,
    claim: NodeClaimView | JSON,
    node: Mapping[str, Any] | None,
    message: str,
    *,
    type_: str,
) -> None:
    """``DisruptionBlocked`` with ``message`` on the claim and on its Node (when there is one),
    as a series: said again while it stays true, the Event's count goes up instead of a new
    Event each time."""
    involved = [claim_object(claim)]
    if node is not None:
        involved.append(node_object(node))
    for obj in involved:
        await events.record(obj, type_=type_, reason="DisruptionBlocked", message=message)
