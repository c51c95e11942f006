"""The NodePool controller: validate every NodePool and report on it.

Owns turning NodePool (and NodeClass) objects into the ``model.NodePool`` views the provisioning
pass uses, and writing each pool's status: a ``Ready`` condition (``False`` with the bad field
named when the pool is invalid or its NodeClass is missing, plus a Warning Event), the number
of nodes, the capacity it holds against its limits, what its launched nodes cost per hour
(the columns `kubectl get nodepools` shows) and its NodeClaims by state (``nodesByState``).
An invalid pool is skipped; every other pool keeps being served.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp

from kube import JSON, Api, ApiError, ObjectMeta, record_event
from provisioner.catalog import Catalog
from provisioner.claims import NodeClaimView
from provisioner.controllers.state import ClusterState
from provisioner.errors import InvalidFieldError
from provisioner.model import NodePool
from provisioner.objects import (
    NODEPOOLS,
    POOL_LABEL,
    nodeclass_name,
    resources_to_k8s,
    validate_nodepool,
    with_condition,
)
from provisioner.resources import Resources

__all__ = [
    "COMPONENT",
    "NODE_STATES",
    "NodePoolController",
    "PoolUsage",
    "pool_prices",
    "states_status",
    "usage_status",
]

log = logging.getLogger(__name__)

COMPONENT = "updraft-provisioner"


PoolUsage = tuple[int, Resources, float]
"""Per pool: nodes (registered or in flight), their capacity, and dollars per hour."""

LIFECYCLE_STATES = ("launching", "launched", "registered", "initialized", "deleting")
"""Where each of a pool's NodeClaims is (each counts in one: the furthest it got)."""
NODE_STATES = (*LIFECYCLE_STATES, "consolidatable", "drifted", "disrupting")
"""``status.nodesByState``'s keys: the lifecycle states, then across them how many may be
consolidated, have drifted, and are being taken away by a disruption command."""


def states_status(counts: Mapping[str, int] | None) -> dict[str, int]:
    """``status.nodesByState``: every state's count, 0 for the states no claim is in."""
    counts = counts or {}
    return {state: counts.get(state, 0) for state in NODE_STATES}


def pool_prices(claims: Iterable[NodeClaimView]) -> dict[str, float]:
    """Dollars per hour per pool: the price of each launched NodeClaim not being deleted (an
    unlaunched claim costs nothing yet; a terminating one is on its way out)."""
    prices: dict[str, float] = defaultdict(float)
    for claim in claims:
        if claim.pool is None or claim.meta.deleting or not claim.is_true("Launched"):
            continue
        prices[claim.pool] += claim.price
    return dict(prices)


def usage_status(usage: PoolUsage) -> JSON:
    """The status fields a pool's usage becomes: `nodes`, `resources` (quantities) and
    `pricePerHour` (a decimal string, as NodeClaim's `status.price`)."""
    nodes, capacity, price = usage
    return {
        "nodes": nodes,
        "resources": resources_to_k8s(capacity),
        "pricePerHour": f"{round(price, 6):g}",
    }


class NodePoolController:
    def __init__(self, api: Api, state: ClusterState, catalog: Catalog) -> None:
        self._api = api
        self._state = state
        self._catalog = catalog
        self._written: dict[str, Any] = {}
        """Per pool: the status fields last written (so unchanged status is not rewritten)."""

    def ready(self) -> list[tuple[NodePool, JSON]]:
        """Valid pools (NodeClass zones folded in) with their objects, skipping deleted ones."""
        out = []
        for obj in self._state.nodepools.store.values():
            if ObjectMeta.of(obj).deleting:
                continue
            pool = self._validate(obj)
            if isinstance(pool, NodePool):
                out.append((pool, obj))
        return out

    def pool(self, name: str) -> NodePool | None:
        obj = self._state.nodepools.store.get(("", name))
        if obj is None:
            return None
        pool = self._validate(obj)
        return pool if isinstance(pool, NodePool) else None

    def _validate(self, obj: Mapping[str, Any]) -> NodePool | InvalidFieldError:
        nodeclass = self._state.nodeclass(nodeclass_name(obj))
        try:
            return validate_nodepool(obj, nodeclass, self._catalog)
        except InvalidFieldError as e:
            return e

    async def reconcile_all(
        self,
        usage: Mapping[str, PoolUsage],
        states: Mapping[str, Mapping[str, int]] | None = None,
    ) -> None:
        """Write every pool's status; ``usage`` is (nodes, capacity, price) per pool name,
        ``states`` its NodeClaims by state (``NODE_STATES``)."""
        for obj in list(self._state.nodepools.store.values()):
            name = ObjectMeta.of(obj).name
            await self._reconcile(
                obj, usage.get(name, (0, Resources(), 0.0)), states_status((states or {}).get(name))
            )

    async def _reconcile(self, obj: JSON, usage: PoolUsage, states: dict[str, int]) -> None:
        meta = ObjectMeta.of(obj)
        name = meta.name
        generation = meta.generation
        result = self._validate(obj)
        if isinstance(result, InvalidFieldError):
            not_found = result.field == "spec.template.spec.nodeClassRef.name"
            reason = "NodeClassNotFound" if not_found else "InvalidSpec"
            ready, message = False, str(result)
        else:
            reason, ready, message = "Ready", True, "the pool can launch nodes"
        wanted = {
            "ready": ready,
            "reason": reason,
            "message": message,
            "generation": generation,
            **usage_status(usage),
            "nodesByState": states,
        }
        before = self._written.get(name)
        if before == wanted:
            return
        conditions = with_condition(
            (obj.get("status") or {}).get("conditions") or [],
            "Ready",
            status=ready,
            reason=reason,
            message=message,
            generation=generation,
        )
        status: JSON = {
            "conditions": conditions,
            **usage_status(usage),
            "nodesByState": states,
            "observedGeneration": generation,
        }
        try:
            await self._api.patch_status(NODEPOOLS, name, {"status": status})
        except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as e:
            log.warning("cannot write status of NodePool %s: %s", name, e)
            return
        self._written[name] = wanted
        changed = before is None or (before["ready"], before["message"]) != (ready, message)
        if changed and not ready:
            log.warning("NodePool %s is not ready: %s", name, message)
            await record_event(
                self._api,
                {**obj, "apiVersion": "updraft.io/v1alpha1", "kind": "NodePool"},
                type_="Warning",
                reason=reason,
                message=message,
                component=COMPONENT,
            )

    def forget(self, name: str) -> None:
        self._written.pop(name, None)


def pool_of(obj: Mapping[str, Any]) -> str | None:
    """The NodePool a Node (JSON) belongs to; a NodeClaim's view says it as ``pool``."""
    return ObjectMeta.of(obj).labels.get(POOL_LABEL)
