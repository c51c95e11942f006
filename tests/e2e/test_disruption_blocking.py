"""What keeps a node from being disrupted, against the real control plane: consolidateAfter,
PodDisruptionBudgets, do-not-disrupt pods, budgets (a count, a closed window) — and what does not
(expiry).

Each test watches the cluster through informers (every version the API server hands out, in
order), so "never" is checked at every change, not at the moments a poll happened to look.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from kube import EVENTS, JSON, NODES, PODS, Api, Event, Informer, Resource
from provisioner.controllers.orchestration import COMMAND_ANNOTATION, REPLACES_ANNOTATION
from provisioner.objects import NODECLAIMS, NODEPOOLS, POOL_LABEL
from tests.e2e.test_disruption import FAST, _consolidating
from tests.e2e.test_provisioner import (
    DISRUPTED,
    Tenant,
    _claim_and_node_gone,
    _condition,
    _kubectl,
    crds,
    tenant,
)
from tests.e2e.waiting import eventually

__all__ = ["crds", "tenant"]

INSTANCE_TYPE = "node.kubernetes.io/instance-type"


# --- helpers --------------------------------------------------------------------------------


class _Seen:
    """Every change an informer on one kind delivers, in order, with when the test saw it and
    ``measure`` of all the objects of that kind right after it."""

    def __init__(
        self,
        api: Api,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        measure: Callable[[Iterable[JSON]], int] | None = None,
    ) -> None:
        self.changes: list[tuple[float, str, JSON]] = []
        self.measures: list[int] = []
        self._measure = measure
        self._loop = asyncio.get_running_loop()
        self.informer = Informer(
            api,
            resource,
            handler=self._record,
            namespace=namespace,
            label_selector=label_selector,
        )

    async def _record(self, event: Event) -> None:
        self.changes.append((self._loop.time(), event.type, event.object))
        if self._measure is not None:
            self.measures.append(self._measure(self.informer.store.values()))

    def versions(self, name: str) -> list[tuple[float, str, JSON]]:
        return [c for c in self.changes if c[2]["metadata"]["name"] == name]


@asynccontextmanager
async def _seeing(
    api: Api,
    resource: Resource,
    *,
    namespace: str | None = None,
    label_selector: str | None = None,
    measure: Callable[[Iterable[JSON]], int] | None = None,
) -> AsyncIterator[_Seen]:
    seen = _Seen(api, resource, namespace=namespace, label_selector=label_selector, measure=measure)
    seen.informer.start()
    try:
        await asyncio.wait_for(seen.informer.synced.wait(), timeout=30)
        yield seen
    finally:
        await seen.informer.close()


def _only(pool: JSON, *types: str) -> JSON:
    """``pool`` with its instance-type requirement cut to ``types``."""
    for req in pool["spec"]["template"]["spec"]["requirements"]:
        if req["key"] == INSTANCE_TYPE:
            req["values"] = list(types)
    return pool


def _disrupting_claim(claim: JSON) -> bool:
    """A NodeClaim a disruption command holds (from its first step) or that is being deleted."""
    meta = claim["metadata"]
    annotations = meta.get("annotations") or {}
    commanded = COMMAND_ANNOTATION in annotations and REPLACES_ANNOTATION not in annotations
    return commanded or bool(meta.get("deletionTimestamp"))


def _disrupting_node(node: JSON) -> bool:
    taints = (node.get("spec") or {}).get("taints") or []
    tainted = any(t.get("key") == DISRUPTED for t in taints)
    return tainted or bool(node["metadata"].get("deletionTimestamp"))


def _consolidatable(claim: JSON) -> str | None:
    cond = _condition(claim, "Consolidatable")
    return None if cond is None else str(cond["status"])


async def _events(tenant: Tenant, names: set[str], reason: str) -> list[JSON]:
    """Events of ``reason`` on any of the NodeClaims or Nodes named (they live in default)."""
    items, _ = await tenant.api.list(EVENTS, "default")
    return [
        e
        for e in items
        if e["involvedObject"].get("kind") in ("NodeClaim", "Node")
        and e["involvedObject"].get("name") in names
        and e.get("reason") == reason
    ]


async def _blocked_saying(tenant: Tenant, names: set[str], *needles: str) -> JSON:
    async def told() -> JSON | None:
        for event in await _events(tenant, names, "DisruptionBlocked"):
            if all(n in event["message"] for n in needles):
                return event
        return None

    return await eventually(
        told, within=90, what=f"DisruptionBlocked on {sorted(names)} saying {needles}"
    )


def _node_of(pods: list[JSON]) -> str:
    (pod,) = pods
    return str(pod["spec"]["nodeName"])


async def _claim_of(tenant: Tenant, pool: str, node: str) -> str:
    """The NodeClaim whose status names ``node`` (a pod may run there a moment before)."""

    async def named() -> str | None:
        for c in await tenant.claims(pool):
            if (c.get("status") or {}).get("nodeName") == node:
                return str(c["metadata"]["name"])
        return None

    return await eventually(named, within=30, what=f"a NodeClaim naming node {node}")


# --- 2. an empty node goes after consolidateAfter, not before --------------------------------


AFTER = 20.0
WATCH_SLACK = 1.0
"""Seconds the test's watch may see the pod go later than the controller did (two clients)."""


async def test_an_empty_node_goes_after_consolidate_after_and_not_before(tenant: Tenant) -> None:
    tenant.flags = FAST
    await tenant.create_nodeclass()
    await tenant.start()
    pool = _consolidating(tenant, "after", after=f"{AFTER:.0f}s")
    name = pool["metadata"]["name"]
    await tenant.create_pool(pool)
    await tenant.deployment("inflate", 1)
    node = _node_of(await tenant.running("inflate", 1))
    claim = await _claim_of(tenant, name, node)

    async with (
        _seeing(tenant.api, NODECLAIMS, label_selector=f"{POOL_LABEL}={name}") as claims,
        _seeing(tenant.api, PODS, namespace=tenant.namespace, label_selector="app=inflate") as pods,
    ):
        await tenant.scale("inflate", 0)
        await _claim_and_node_gone(tenant, claim, node)

    (left,) = [at for at, kind, _ in pods.changes if kind == "DELETED"]
    versions = claims.versions(claim)
    first = next(i for i, (_, _, obj) in enumerate(versions) if _disrupting_claim(obj))
    disrupted_at, _, _ = versions[first]
    # While the node was empty but not yet Consolidatable it stayed: versions from after the
    # controller saw the pod go (they carry its last lastPodEventTime) say False, Settling ...
    last_event = (versions[first][2].get("status") or {}).get("lastPodEventTime")
    assert last_event
    empty = [
        obj
        for _, _, obj in versions[:first]
        if (obj.get("status") or {}).get("lastPodEventTime") == last_event
    ]
    assert any(_consolidatable(obj) == "False" for obj in empty), [
        (obj.get("status") or {}).get("conditions") for obj in empty
    ]
    # ... the disruption came once it said True ...
    assert _consolidatable(versions[first][2]) == "True"
    # ... and came no sooner than consolidateAfter after the last pod left.
    assert disrupted_at - left >= AFTER - WATCH_SLACK, disrupted_at - left


# --- 3. a PDB and do-not-disrupt pods keep their nodes, and lose no pod ---------------------

PROTECTED = {
    "guarded": {},  # under a PodDisruptionBudget that allows no disruption
    "keep-karpenter": {"karpenter.sh/do-not-disrupt": "true"},
    "keep-updraft": {"updraft.io/do-not-disrupt": "true"},
}
LAST = {"controller.kubernetes.io/pod-deletion-cost": "1000000000"}
"""Makes the control pod dear to evict, so its node comes last in consolidation's order: every
protected node is tried (and must be refused) before the control's is taken."""


async def test_a_pdb_and_do_not_disrupt_pods_keep_their_nodes_and_lose_no_pod(
    tenant: Tenant,
) -> None:
    tenant.flags = FAST
    await tenant.create_nodeclass()
    await tenant.start()
    # Launched as m5.large, one 1-cpu pod each. Once the pool allows c5.large too, every one of
    # these nodes is worth replacing by single-node consolidation ($0.096/h -> $0.085/h).
    pool = _only(_consolidating(tenant, "guard", after="5s"), "m5.large")
    name = pool["metadata"]["name"]
    await tenant.create_pool(pool)
    await tenant.pdb_allowing_none("guard", app="guarded")
    for app, marks in PROTECTED.items():
        await tenant.deployment(app, 1, pod_annotations=marks)
    await tenant.deployment("control", 1, pod_annotations=LAST)
    pods = {app: (await tenant.running(app, 1))[0] for app in [*PROTECTED, "control"]}
    nodes = {app: str(pod["spec"]["nodeName"]) for app, pod in pods.items()}
    assert len(set(nodes.values())) == 4, nodes
    claims = {app: await _claim_of(tenant, name, node) for app, node in nodes.items()}

    selector = f"{POOL_LABEL}={name}"
    async with (
        _seeing(tenant.api, PODS, namespace=tenant.namespace) as seen,
        _seeing(tenant.api, NODECLAIMS, label_selector=selector) as claims_seen,
        _seeing(tenant.api, NODES, label_selector=selector) as nodes_seen,
    ):
        requirements = _only(pool, "c5.large", "m5.large")["spec"]["template"]["spec"]
        await tenant.api.patch(
            NODEPOOLS,
            name,
            {"spec": {"template": {"spec": {"requirements": requirements["requirements"]}}}},
        )
        # The control node is replaced: consolidation did act, and on it first.
        await _claim_and_node_gone(tenant, claims["control"], nodes["control"])
        (moved,) = await tenant.running("control", 1)
        landed = await tenant.api.get(NODES, moved["spec"]["nodeName"])
        assert landed["metadata"]["labels"][INSTANCE_TYPE] == "c5.large"
        # Each protected node says what keeps it.
        ns = tenant.namespace
        needles = {
            "guarded": f"PDB {ns}/guard",
            "keep-karpenter": "karpenter.sh/do-not-disrupt",
            "keep-updraft": "updraft.io/do-not-disrupt",
        }
        for app, needle in needles.items():
            pod = f"pod {ns}/{pods[app]['metadata']['name']}"
            await _blocked_saying(tenant, {claims[app], nodes[app]}, needle, pod)

    # Not one version of a protected node or its claim was ever tainted, commanded or deleted.
    for app in PROTECTED:
        claim_versions = [obj for _, _, obj in claims_seen.versions(claims[app])]
        node_versions = [obj for _, _, obj in nodes_seen.versions(nodes[app])]
        assert claim_versions
        assert node_versions
        assert not [c["metadata"] for c in claim_versions if _disrupting_claim(c)]
        assert not [n["spec"] for n in node_versions if _disrupting_node(n)]
        (now,) = await tenant.running(app, 1)
        assert now["metadata"]["uid"] == pods[app]["metadata"]["uid"]
    # What the README tells a user to run to see why a node stays.
    described = _kubectl(tenant.cp, "describe", "nodeclaim", claims["guarded"])
    assert "DisruptionBlocked" in described
    assert f"PDB {tenant.namespace}/guard" in described
    # No protected pod was ever evicted, deleted or even marked for deletion; the control's was.
    touched = {
        obj["metadata"]["labels"].get("app")
        for _, kind, obj in seen.changes
        if kind == "DELETED" or obj["metadata"].get("deletionTimestamp")
    }
    assert touched == {"control"}, touched


# --- 4. budgets: one node at a time; a closed window stops consolidation, not expiry ---------


async def test_a_budget_of_one_node_never_has_two_disrupting(tenant: Tenant) -> None:
    tenant.flags = FAST
    await tenant.create_nodeclass()
    await tenant.start()
    pool = _only(_consolidating(tenant, "one", after="2s"), "c5.large")
    pool["spec"]["disruption"]["budgets"] = [{"nodes": "1"}]
    name = pool["metadata"]["name"]
    await tenant.create_pool(pool)
    await tenant.deployment("inflate", 4)
    pods = await tenant.running("inflate", 4)
    assert len({p["spec"]["nodeName"] for p in pods}) == 4

    def claims_disrupting(objs: Iterable[JSON]) -> int:
        return sum(_disrupting_claim(o) for o in objs)

    def nodes_disrupting(objs: Iterable[JSON]) -> int:
        return sum(_disrupting_node(o) for o in objs)

    selector = f"{POOL_LABEL}={name}"
    async with (
        _seeing(tenant.api, NODECLAIMS, label_selector=selector, measure=claims_disrupting) as cs,
        _seeing(tenant.api, NODES, label_selector=selector, measure=nodes_disrupting) as ns,
    ):
        await tenant.scale("inflate", 0)

        async def none_left() -> bool | None:
            gone = not await tenant.nodes(name) and not await tenant.claims(name)
            return True if gone else None

        await eventually(none_left, within=150, what="the 4 empty nodes gone")

    # At every change either kind went through, at most one was disrupting ...
    assert max(cs.measures) == 1, cs.measures
    assert max(ns.measures) == 1, ns.measures
    # ... and every one of the four was, in its turn.
    assert len({o["metadata"]["name"] for _, _, o in cs.changes if _disrupting_claim(o)}) == 4
    assert len({o["metadata"]["name"] for _, _, o in ns.changes if _disrupting_node(o)}) == 4


async def test_a_closed_window_blocks_consolidation_but_not_expiry(tenant: Tenant) -> None:
    tenant.flags = FAST
    await tenant.create_nodeclass()
    await tenant.start()
    pool = _consolidating(tenant, "window", after="2s")
    # "No consolidation in business hours": a budget of 0 nodes inside a daily window, here
    # one that opened 10 minutes ago and lasts an hour.
    opened = datetime.now(UTC) - timedelta(minutes=10)
    pool["spec"]["disruption"]["budgets"] = [
        {"nodes": "100%"},
        {
            "nodes": "0",
            "schedule": f"{opened.minute} {opened.hour} * * *",
            "duration": "1h",
            "reasons": ["Underutilized", "Empty"],
        },
    ]
    pool["spec"]["template"]["spec"]["expireAfter"] = "1m"
    name = pool["metadata"]["name"]
    await tenant.create_pool(pool)
    await tenant.deployment("inflate", 3)
    node = {p["spec"]["nodeName"] for p in await tenant.running("inflate", 3)}.pop()
    claim = await _claim_of(tenant, name, node)
    await tenant.scale("inflate", 1)

    # One pod left on an m5.xlarge: a c5.large would do, but the window is closed.
    await _blocked_saying(tenant, {claim, node}, f"budgets of NodePool {name}", "Underutilized")
    assert _consolidatable(await tenant.api.get(NODECLAIMS, claim)) == "True"
    # Expiry is no disruption method: no budget holds it. The node goes, the pod moves.
    await _claim_and_node_gone(tenant, claim, node)
    assert await _events(tenant, {claim}, "Expired")
    assert not await _events(tenant, {claim, node}, "Disrupting")
    (pod,) = await tenant.running("inflate", 1)
    assert pod["spec"]["nodeName"] != node
