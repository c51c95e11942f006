"""The NodeClaim lifecycle: launched -> registered -> initialized, and termination.

Owns moving each NodeClaim along: launch it through the cloud provider (its instance types in
order, cheapest first; the provider falls back along them), mark it ``Registered`` once a Node
with its providerID appears, ``Initialized`` once that Node is Ready with its startup taints
gone (``Ready`` = all three). A claim not registered within the registration timeout is
deleted. A registered claim's Node gets the termination finalizer, and a deleted Node gets
its claim deleted; a deleting claim is handed to ``termination`` (drain, instance, Node,
finalizer). Every step is safe to repeat after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from kits import SystemClock, cancel_and_wait, parse_rfc3339
from kube import JSON, Api, ApiError, NotFoundError, ObjectMeta, version_of
from provisioner import labels as lbl
from provisioner.claims import NodeClaimView
from provisioner.cloud.provider import CloudProvider, Instance
from provisioner.controllers import metrics
from provisioner.controllers.patching import claim_event, patch_claim_status
from provisioner.controllers.state import ClusterState
from provisioner.controllers.termination import Termination
from provisioner.errors import CloudProviderError, InsufficientCapacityError
from provisioner.model import KubeletConfig, NodePool
from provisioner.objects import (
    FINALIZER,
    NODECLAIMS,
    is_true,
    resources_to_k8s,
)

__all__ = ["Lifecycle"]

log = logging.getLogger(__name__)

_PHASES = ("Launching", "Launched", "Registered", "Initialized", "Terminating")


def _since(timestamp: str | None) -> float:
    if not timestamp:
        return 0.0
    try:
        then = parse_rfc3339(timestamp)
    except ValueError:
        return 0.0
    return (SystemClock().now() - then).total_seconds()


def phase(claim: NodeClaimView) -> str:
    if claim.meta.deleting:
        return "Terminating"
    for kind in ("Initialized", "Registered", "Launched"):
        if claim.is_true(kind):
            return kind
    return "Launching"


class Lifecycle:
    def __init__(
        self,
        api: Api,
        state: ClusterState,
        provider: CloudProvider,
        *,
        pool: Callable[[str], NodePool | None],
        registration_timeout: float,
        termination: Termination,
    ) -> None:
        self._api = api
        self._state = state
        self._provider = provider
        self._pool = pool
        self._registration_timeout = registration_timeout
        self._termination = termination
        self._launching: dict[str, asyncio.Task[None]] = {}
        self._reported: set[tuple[str, str]] = set()
        """(name, resourceVersion) of the malformed NodeClaims already reported."""
        self._pools: set[str] = set()
        """The NodePools whose per-pool series the last tick set."""

    async def close(self) -> None:
        tasks = list(self._launching.values())
        await cancel_and_wait(*tasks)
        self._launching.clear()

    def launch_soon(self, claim: NodeClaimView) -> None:
        """Launch ``claim`` in the background, unless a launch of it is already running."""
        name = claim.name
        if name in self._launching:
            return
        task = asyncio.create_task(self._launch(name), name=f"launch {name}")
        self._launching[name] = task
        task.add_done_callback(lambda _: self._launching.pop(name, None))

    async def tick(self) -> None:
        """Reconcile every NodeClaim once, and refresh the NodeClaim metrics."""
        await self._report_rejected()
        await self._termination.release_orphans()
        claims = self._state.claims()
        nodes = {
            str((n.get("spec") or {}).get("providerID")): n
            for n in self._state.nodes.store.values()
            if (n.get("spec") or {}).get("providerID")
        }
        counts = dict.fromkeys(_PHASES, 0)
        cost = 0.0
        # Every NodePool that exists reads its count (0 too); a deleted one's series goes.
        pool_claims = {ObjectMeta.of(p).name: 0 for p in self._state.nodepools.store.values()}
        pool_cost = dict.fromkeys(pool_claims, 0.0)
        for claim in claims.values():
            try:
                await self._reconcile(claim, nodes)
            except (ApiError, aiohttp.ClientError, OSError, TimeoutError, CloudProviderError) as e:
                log.warning("NodeClaim %s: %s; retrying", claim.name, e)
            current = phase(claim)
            counts[current] += 1
            if current == "Terminating":
                continue
            pool = claim.pool or ""
            pool_claims[pool] = pool_claims.get(pool, 0) + 1
            if claim.is_true("Launched"):
                cost += claim.price
                pool_cost[pool] = pool_cost.get(pool, 0.0) + claim.price
        for name, count in counts.items():
            metrics.NODECLAIMS.labels(name).set(count)
        metrics.LAUNCHED_COST.set(round(cost, 6))
        for name, count in pool_claims.items():
            metrics.NODEPOOL_NODES.labels(name).set(count)
            metrics.NODEPOOL_COST.labels(name).set(round(pool_cost.get(name, 0.0), 6))
        for name in self._pools - pool_claims.keys():
            metrics.NODEPOOL_NODES.remove(name)
            metrics.NODEPOOL_COST.remove(name)
        self._pools = set(pool_claims)

    async def _reconcile(self, claim: NodeClaimView, nodes: Mapping[str, JSON]) -> None:
        name = claim.name
        if claim.meta.deleting:
            if FINALIZER in claim.meta.finalizers:
                await self._termination.terminate(claim)
            return
        if not claim.is_true("Launched"):
            self.launch_soon(claim)
            return
        node = nodes.get(claim.provider_id)
        if not claim.is_true("Registered"):
            if node is None:
                launched = claim.conditions.get("Launched")
                since = launched.last_transition_time if launched is not None else None
                if _since(since) > self._registration_timeout:
                    await self._event(
                        claim,
                        "Warning",
                        "RegistrationTimeout",
                        f"no node registered within {self._registration_timeout:g} s; "
                        "deleting the NodeClaim and its instance",
                    )
                    await self._delete(name)
                return
            node_name = ObjectMeta.of(node).name
            claim = await self._status(
                claim,
                {"nodeName": node_name},
                ("Registered", True, "Registered", f"node {node_name} registered"),
            )
        elif node is None or ObjectMeta.of(node).deleting:
            await self._event(claim, "Normal", "NodeGone", "its node was deleted")
            await self._delete(name)
            return
        await self._termination.adopt(node)
        if not claim.is_true("Initialized"):
            await self._provider.settle(claim, node)
        if not claim.is_true("Initialized") and _initialized(claim, node):
            claim = await self._status(
                claim,
                {},
                ("Initialized", True, "Initialized", "node is Ready, startup taints removed"),
                ("Ready", True, "Ready", ""),
            )

    async def _launch(self, name: str) -> None:
        claim = self._state.claim(name)
        if claim is None or claim.is_true("Launched"):
            return
        if claim.meta.deleting:
            return
        pool = self._pool(claim.pool or "")
        kubelet = pool.kubelet if pool is not None else KubeletConfig()
        by_name = {t.name: t for t in self._provider.catalog.instance_types(kubelet)}
        options = [by_name[n] for n in claim.options if n in by_name]
        nodeclass = self._state.nodeclass(claim.node_class_ref.name)
        try:
            instance = await self._provider.create(claim, options, nodeclass=nodeclass)
        except InsufficientCapacityError as e:
            await self._event(claim, "Warning", "InsufficientCapacity", str(e))
            with contextlib.suppress(ApiError, aiohttp.ClientError, OSError, TimeoutError):
                await self._delete(name)
            return
        except CloudProviderError as e:
            log.warning("launching NodeClaim %s failed: %s; retrying", name, e)
            return
        try:
            await self._launched(claim, instance)
        except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as e:
            log.warning("NodeClaim %s launched, status not written: %s; retrying", name, e)

    async def _launched(self, claim: NodeClaimView, instance: Instance) -> None:
        name = claim.name
        labels = {
            lbl.INSTANCE_TYPE: instance.instance_type,
            lbl.ZONE: instance.zone,
            lbl.CAPACITY_TYPE: instance.capacity_type,
        }
        patched = self._state.note(
            await self._api.patch(NODECLAIMS, name, {"metadata": {"labels": labels}})
        )
        if patched is None:
            return  # our own write does not parse: reported with the other rejected claims
        message = (
            f"launched {instance.instance_type} {instance.capacity_type} in {instance.zone} "
            f"at ${instance.price:g}/h as {instance.provider_id}"
        )
        await self._status(
            patched,
            {
                "providerID": instance.provider_id,
                "capacity": resources_to_k8s(instance.capacity),
                "allocatable": resources_to_k8s(instance.allocatable),
                "price": f"{instance.price:g}",
            },
            ("Launched", True, "Launched", message),
        )
        log.info("NodeClaim %s: %s", name, message)
        await self._event(claim, "Normal", "Launched", message)

    async def _status(
        self, claim: NodeClaimView, fields: JSON, *conditions: tuple[str, bool, str, str]
    ) -> NodeClaimView:
        return await patch_claim_status(self._api, self._state, claim, fields, *conditions)

    async def _delete(self, name: str) -> None:
        with contextlib.suppress(NotFoundError):
            updated = await self._api.delete(NODECLAIMS, name)
            if updated.get("kind") == "NodeClaim":
                self._state.note(updated)

    async def _report_rejected(self) -> None:
        """A Warning Event (and a log line) naming the bad field, once per version of each
        NodeClaim that does not parse; the claim is otherwise left alone."""
        rejected = self._state.rejected
        self._reported = {k for k in self._reported if k[0] in rejected}
        for name, bad in list(rejected.items()):
            key = (name, version_of(bad.raw))
            if key in self._reported:
                continue
            self._reported.add(key)
            log.warning("NodeClaim %s is malformed, left alone: %s", name, bad.error)
            await self._event(
                bad.raw,
                "Warning",
                "InvalidNodeClaim",
                f"cannot manage this NodeClaim: {bad.error}",
            )

    async def _event(
        self, claim: NodeClaimView | JSON, type_: str, reason: str, message: str
    ) -> None:
        await claim_event(self._api, claim, type_, reason, message)


def _initialized(claim: NodeClaimView, node: Mapping[str, Any] | None) -> bool:
    if node is None or not is_true(node, "Ready"):
        return False
    startup = {(t.key, t.effect) for t in claim.startup_taints}
    taints = {(t.get("key"), t.get("effect")) for t in (node.get("spec") or {}).get("taints") or []}
    return not startup & taints and not any(key == lbl.UNREGISTERED_TAINT for key, _ in taints)
