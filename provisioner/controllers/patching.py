"""Writes on a NodeClaim that more than one controller makes: its status conditions, its Events.

Owns patching a NodeClaim's status (fields plus conditions, transition times kept when the
status does not change) and recording an Event on it; both remember the write in the cluster
state so the next pass sees it before the watch echoes it. It must not decide what to write.
"""

from __future__ import annotations

from kube import JSON, Api, record_event
from provisioner.claims import NodeClaimView
from provisioner.controllers.nodepools import COMPONENT
from provisioner.controllers.state import ClusterState
from provisioner.objects import API_VERSION, NODECLAIMS, with_condition

__all__ = ["claim_event", "claim_object", "patch_claim_status"]

ConditionChange = tuple[str, bool, str, str]
"""(type, status, reason, message) of one condition to set."""


async def patch_claim_status(
    api: Api, state: ClusterState, claim: NodeClaimView, fields: JSON, *conditions: ConditionChange
) -> NodeClaimView:
    """``claim`` with ``fields`` and ``conditions`` written to its status, as now stored."""
    current = [c.to_k8s() for c in claim.conditions.values()]
    for kind, status, reason, message in conditions:
        current = with_condition(current, kind, status=status, reason=reason, message=message)
    patch = {"status": {**fields, "conditions": current}}
    updated = await api.patch_status(NODECLAIMS, claim.name, patch)
    # A write of ours that does not parse is in ``rejected``; go on from what we had.
    return state.note(updated) or claim


def claim_object(claim: NodeClaimView | JSON) -> JSON:
    """The full object an Event about ``claim`` names."""
    raw = claim.raw if isinstance(claim, NodeClaimView) else claim
    return {**raw, "apiVersion": API_VERSION, "kind": "NodeClaim"}


async def claim_event(
    api: Api, claim: NodeClaimView | JSON, type_: str, reason: str, message: str
) -> None:
    await record_event(
        api, claim_object(claim), type_=type_, reason=reason, message=message, component=COMPONENT
    )
