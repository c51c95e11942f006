"""The NodePool controller: validate every NodePool and report on it.

Owns turning NodePool (and NodeClass) objects into the ``model.NodePool`` views the provisioning
pass uses, and writing each pool's status: a ``Ready`` condition (``False`` with the bad field
named when the pool is invalid or its NodeClass is missing, plus a Warning Event), the number
of nodes and the capacity it holds against its limits. An invalid pool is skipped; every other
pool keeps being served.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from kube import JSON, Api, ApiError, record_event
from kube.views import ObjectMeta
from provisioner.catalog import Catalog
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

__all__ = ["COMPONENT", "NodePoolController"]

log = logging.getLogger(__name__)

COMPONENT = "updraft-provisioner"


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

    async def reconcile_all(self, usage: Mapping[str, tuple[int, Resources]]) -> None:
        """Write every pool's status; ``usage`` is (nodes, capacity) per pool name."""
        for obj in list(self._state.nodepools.store.values()):
            name = ObjectMeta.of(obj).name
            await self._reconcile(obj, usage.get(name, (0, Resources())))

    async def _reconcile(self, obj: JSON, usage: tuple[int, Resources]) -> None:
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
        nodes, capacity = usage
        wanted = {
            "ready": ready,
            "reason": reason,
            "message": message,
            "generation": generation,
            "nodes": nodes,
            "resources": resources_to_k8s(capacity),
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
            "nodes": nodes,
            "resources": wanted["resources"],
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
