"""One provisioning pass: pending pods in, NodeClaims created and launched.

Owns building the simulation's inputs from the cluster state (nodes with their bound pods,
in-flight NodeClaims, DaemonSets, the Ready NodePools), running ``simulate`` off the event loop,
creating one NodeClaim per planned node (all of one pass share a batch id) and handing each to
the lifecycle to launch, and telling pods what happened: a ``Nominated`` Event for a pod a new
NodeClaim is for, a ``FailedProvisioning`` Warning naming the constraint for a pod no NodePool
can take, kept current (count, lastTimestamp) while the pod keeps waiting. Existing nodes and
in-flight NodeClaims are filled first, so a burst that spans two passes (or a restart) never
launches twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import string
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TypeVar

import aiohttp

from kube import JSON, Api, ApiError, EventSeries, ObjectMeta, name_of
from provisioner.catalog import Catalog
from provisioner.controllers import metrics
from provisioner.controllers.lifecycle import Lifecycle
from provisioner.controllers.nodepools import COMPONENT, NodePoolController
from provisioner.controllers.state import ClusterState
from provisioner.errors import InvalidFieldError
from provisioner.model import KubeletConfig, NodePool, NodeView, Pod
from provisioner.objects import (
    API_VERSION,
    NODECLAIMS,
    claim_view,
    is_provisionable,
    node_view,
    nodeclaim_from_plan,
    nodeclass_name,
)
from provisioner.parsing import pod_from_k8s, pod_from_template
from provisioner.scheduling import NodeClaimPlan, SimulationResult, simulate

__all__ = ["Provisioning", "cluster_views", "create_claim", "daemonset_pods"]

log = logging.getLogger(__name__)

_SUFFIX = string.ascii_lowercase + string.digits
CONCURRENCY = 32
"""API calls one pass has in flight at once (NodeClaim creates, then Events): enough that 300
pods' worth takes a few round trips, few enough to stay well inside the client's connection
pool and the apiserver's default max-requests-inflight of 400."""

T = TypeVar("T")


async def bounded(calls: Iterable[Awaitable[T]], limit: int = CONCURRENCY) -> list[T]:
    """Await ``calls`` with at most ``limit`` in flight; their results, in order."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Awaitable[T]) -> T:
        async with gate:
            return await call

    return list(await asyncio.gather(*(one(c) for c in calls)))


def cluster_views(
    state: ClusterState, *, pool: Callable[[str], NodePool | None], catalog: Catalog
) -> list[NodeView]:
    """What the simulation is told the cluster is: nodes (with their bound pods; deleting
    and cordoned ones left out; a node whose NodeClaim is not Initialized yet is booting, its
    startup and not-ready taints soon gone) and the NodeClaims whose node has not registered
    yet."""
    by_node = state.pods_by_node()
    claims = state.claims()
    booting = {
        key: claim
        for claim in claims.values()
        if not claim.is_true("Initialized")
        for key in (claim.provider_id, claim.node_name)
        if key
    }
    views: list[NodeView] = []
    provider_ids: set[str] = set()
    names: set[str] = set()
    for node in state.nodes.store.values():
        meta, spec = ObjectMeta.of(node), node.get("spec") or {}
        names.add(meta.name)
        if spec.get("providerID"):
            provider_ids.add(str(spec["providerID"]))
        if meta.deleting or spec.get("unschedulable"):
            continue
        mine = booting.get(str(spec.get("providerID") or "")) or booting.get(meta.name)
        try:
            views.append(
                node_view(
                    node,
                    by_node.get(meta.name, []),
                    startup_taints=mine.startup_taints if mine is not None else (),
                    initialized=mine is None,
                )
            )
        except InvalidFieldError as e:
            log.warning("node %s left out of the simulation: %s", meta.name, e)
    for name, claim in claims.items():
        if claim.meta.deleting:
            continue
        if claim.provider_id in provider_ids or claim.node_name in names:
            continue  # registered: the Node stands for it
        if name in names:
            continue
        owner = pool(claim.pool or "")
        kubelet = owner.kubelet if owner is not None else KubeletConfig()
        try:
            views.append(claim_view(claim, catalog, kubelet))
        except InvalidFieldError as e:
            log.warning("NodeClaim %s left out of the simulation: %s", name, e)
    return views


def daemonset_pods(state: ClusterState) -> list[Pod]:
    """The pod template of every DaemonSet that parses (overhead on each new node)."""
    out = []
    for ds in state.daemonsets.store.values():
        try:
            out.append(pod_from_template(ds))
        except InvalidFieldError as e:
            log.warning("DaemonSet %s left out: %s", name_of(ds), e)
    return out


async def create_claim(
    api: Api,
    state: ClusterState,
    lifecycle: Lifecycle,
    plan: NodeClaimPlan,
    *,
    pool: JSON,
    batch: str,
    annotations: Mapping[str, str] | None = None,
    launch: bool = True,
) -> str:
    """Create the NodeClaim of ``plan`` (a fresh name in its pool) and, with ``launch``, start
    its launch; its name. API errors propagate: nothing was created then."""
    suffix = "".join(random.choices(_SUFFIX, k=5))
    name = f"{plan.nodepool}-{suffix}"
    nodeclass = state.nodeclass(nodeclass_name(pool))
    claim = nodeclaim_from_plan(
        plan, name=name, pool=pool, batch=batch, nodeclass=nodeclass, annotations=annotations
    )
    made = await api.create(NODECLAIMS, claim)
    view = state.note(made)
    if view is not None and launch:
        lifecycle.launch_soon(view)
    return name


def _left_out_by_limits(result: SimulationResult, pools: Mapping[str, JSON]) -> dict[str, int]:
    """Per NodePool, how many pods of the pass only its limits kept from a new node."""
    out: dict[str, int] = {}
    for _, reason in result.unschedulable:
        for name in pools:
            if f"nodepool {name!r}: nodepool limits" in reason:
                out[name] = out.get(name, 0) + 1
    return out


class Provisioning:
    def __init__(
        self,
        api: Api,
        state: ClusterState,
        *,
        pools: NodePoolController,
        lifecycle: Lifecycle,
        catalog: Catalog,
        event_repeat: float,
    ) -> None:
        self._api = api
        self._state = state
        self._pools = pools
        self._lifecycle = lifecycle
        self._catalog = catalog
        self._told = EventSeries(api, component=COMPONENT, interval=event_repeat)
        """An Event per change of what we say about a pod, refreshed every ``event_repeat``
        seconds while it stays true (not one per pass, not one that expires)."""
        self._limited: set[str] = set()
        """The NodePools whose limited-pods series the last pass set."""

    def pending(self) -> list[JSON]:
        return [p for p in self._state.pods.store.values() if is_provisionable(p)]

    def refresh_pending(self) -> list[JSON]:
        """The pending pods, with the gauges counting them made current: between passes pods
        get nodes and, with none left pending, no pass runs to say so."""
        raw = self.pending()
        metrics.PENDING_PODS.set(len(raw))
        if not raw:
            for name in self._limited:
                metrics.NODEPOOL_LIMITED_PODS.labels(name).set(0)
        return raw

    async def run_pass(self) -> SimulationResult | None:
        """Provision for the pods pending now; returns what the simulation decided."""
        began = time.perf_counter()
        raw = self.refresh_pending()
        if not raw:
            return None
        pods: list[Pod] = []
        objects: dict[str, JSON] = {}
        for obj in raw:
            try:
                pod = pod_from_k8s(obj)
            except InvalidFieldError as e:
                await self._tell(obj, "Warning", "FailedProvisioning", f"cannot provision: {e}")
                continue
            pods.append(pod)
            objects[pod.uid or pod.key] = obj
        pools = self._pools.ready()
        views = cluster_views(self._state, pool=self._pools.pool, catalog=self._catalog)
        daemonsets = daemonset_pods(self._state)
        started = time.perf_counter()
        result = await asyncio.to_thread(
            simulate,
            pods,
            nodepools=[p for p, _ in pools],
            catalog=self._catalog,
            nodes=views,
            daemonsets=daemonsets,
        )
        metrics.SCHEDULING_DURATION.observe(time.perf_counter() - started)
        batch = uuid.uuid4().hex[:12]
        by_pool = {p.name: obj for p, obj in pools}
        # Every claim of the pass at once: one at a time, kube-scheduler fills the first
        # nodes with whatever is pending before the rest exist, and the plan no longer holds.
        names = await bounded(
            self._create(plan, pool=by_pool[plan.nodepool], batch=batch)
            for plan in result.new_claims
        )
        metrics.PASS_DURATION.observe(time.perf_counter() - began)
        # Launched after the creates, whose API calls they would otherwise compete with.
        for name in names:
            view = self._state.claim(name) if name else None
            if view is not None:
                self._lifecycle.launch_soon(view)
        created = sum(1 for name in names if name)
        metrics.BATCHES.labels("created" if created else "none").inc()
        told: list[Awaitable[None]] = []
        for plan, name in zip(result.new_claims, names, strict=True):
            if not name:
                continue
            message = f"pod should schedule on NodeClaim {name} ({plan.instance_types[0].name})"
            for pod in plan.pods:
                nominated = objects.get(pod.uid or pod.key)
                if nominated is not None:
                    told.append(self._tell(nominated, "Normal", "Nominated", message))
        for pod, reason in result.unschedulable:
            stuck = objects.get(pod.uid or pod.key)
            if stuck is not None:
                told.append(
                    self._tell(
                        stuck,
                        "Warning",
                        "FailedProvisioning",
                        f"no NodePool can run this pod: {reason}",
                    )
                )
        limited = _left_out_by_limits(result, by_pool)
        for name in by_pool:
            metrics.NODEPOOL_LIMITED_PODS.labels(name).set(limited.get(name, 0))
        for name in self._limited - by_pool.keys():
            metrics.NODEPOOL_LIMITED_PODS.remove(name)
        self._limited = set(by_pool)
        for name, left_out in limited.items():
            pool_obj = by_pool[name]
            told.append(
                self._told.record(
                    {**pool_obj, "apiVersion": API_VERSION, "kind": "NodePool"},
                    type_="Warning",
                    reason="LimitReached",
                    message=f"limits left {left_out} pending pods without a node",
                )
            )
        await bounded(told)
        return result

    async def _create(self, plan: NodeClaimPlan, *, pool: JSON, batch: str) -> str:
        """Create and start launching ``plan``'s NodeClaim; its name, or "" when the API
        refused (logged; the pods stay pending and the next pass tries again)."""
        try:
            name = await create_claim(
                self._api, self._state, self._lifecycle, plan, pool=pool, batch=batch, launch=False
            )
        except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as e:
            log.warning("cannot create NodeClaim for pool %s: %s", plan.nodepool, e)
            return ""
        metrics.NODECLAIMS_CREATED.labels(plan.nodepool).inc()
        options = ", ".join(t.name for t in plan.instance_types[:5])
        log.info(
            "NodeClaim %s for %d pods (batch %s): %s at $%g/h (options %s)",
            name,
            len(plan.pods),
            batch,
            plan.instance_types[0].name,
            plan.price,
            options,
        )
        return name

    async def _tell(self, pod: JSON, type_: str, reason: str, message: str) -> None:
        await self._told.record(
            {**pod, "apiVersion": "v1", "kind": "Pod"}, type_=type_, reason=reason, message=message
        )
