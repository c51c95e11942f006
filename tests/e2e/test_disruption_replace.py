"""Disruption that replaces nodes, against the real control plane: drift (requirements, the
pool's template, the NodeClass) and expiry replace a node without stranding its pods, and a
provisioner SIGKILLed in the middle of a replace ends in the right state once restarted.

A ``Timeline`` watches NodeClaims, Nodes and the test's pods from before the change, so what
happened in which order is read from the watch streams (one stream's events come in etcd's
order) rather than from polls a fast transition slips between.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pytest

from kits import cancel_and_wait, parse_rfc3339
from kube import JSON, NODES, PODS, Api, ObjectMeta, Resource
from provisioner.controllers.orchestration import (
    COMMAND_ANNOTATION,
    REASON_ANNOTATION,
    REPLACES_ANNOTATION,
)
from provisioner.objects import NODECLAIMS, NODECLASSES, NODEPOOLS, disrupted_taints
from tests.e2e.test_disruption import FAST, _consolidating
from tests.e2e.test_provisioner import (
    DISRUPTED,
    Tenant,
    _claim_and_node_gone,
    _claim_events,
    _condition,
    crds,
    tenant,
)
from tests.e2e.waiting import eventually

__all__ = ["crds", "tenant"]

PENDING_BOUND = 90.0
"""The issue's bound on how long a pod may wait for a node while nodes are replaced."""
POOL_KEY = "e2e.updraft.io/pool"
"""A label each pool's nodes carry and its Deployment's pods select: all of a tenant's pools
share the tenant label and taint, so without it a pod could land in another pool."""
TYPE = "node.kubernetes.io/instance-type"


# --- what the watches saw -------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    seq: int
    """Arrival order over every stream."""
    at: float
    """Event-loop time of arrival."""
    kind: str
    """"claim", "node" or "pod"."""
    type: str
    """LISTED (there when the timeline started), ADDED, MODIFIED or DELETED."""
    obj: JSON

    @property
    def name(self) -> str:
        return ObjectMeta.of(self.obj).name


class Timeline:
    """Every version of the NodeClaims, the Nodes and one namespace's pods, as watched."""

    def __init__(self, api: Api, namespace: str) -> None:
        self._api = api
        self._namespace = namespace
        self._seq = itertools.count()
        self.seen: list[Seen] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        streams: dict[str, tuple[Resource, str | None]] = {
            "claim": (NODECLAIMS, None),
            "node": (NODES, None),
            "pod": (PODS, self._namespace),
        }
        for kind, (resource, namespace) in streams.items():
            items, version = await self._api.list(resource, namespace)
            for item in items:
                self._add(kind, "LISTED", item)
            self._tasks.append(
                asyncio.create_task(self._follow(kind, resource, namespace, version))
            )

    async def stop(self) -> None:
        await cancel_and_wait(*self._tasks)

    async def _follow(
        self, kind: str, resource: Resource, namespace: str | None, version: str
    ) -> None:
        while True:  # the server ends a watch after timeoutSeconds: go on from where it was
            async for event in self._api.watch(
                resource, namespace, resource_version=version, timeout_seconds=60
            ):
                obj = event.get("object") or {}
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if event.get("type") != "BOOKMARK":
                    self._add(kind, str(event.get("type")), obj)

    def _add(self, kind: str, type_: str, obj: JSON) -> None:
        at = asyncio.get_running_loop().time()
        self.seen.append(Seen(next(self._seq), at, kind, type_, obj))

    def _check(self) -> None:
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise AssertionError(f"a watch of the timeline failed: {task.exception()!r}")

    def versions(self, kind: str, name: str) -> list[Seen]:
        self._check()
        return [s for s in self.seen if s.kind == kind and s.name == name]

    def first(self, kind: str, name: str, holds: Callable[[JSON], bool]) -> Seen | None:
        return next(
            (s for s in self.versions(kind, name) if s.type != "DELETED" and holds(s.obj)), None
        )

    def claims_replacing(self, node: str) -> list[str]:
        """The NodeClaims created to replace ``node``, in the order they appeared."""
        self._check()
        out: list[str] = []
        for s in self.seen:
            replaces = ObjectMeta.of(s.obj).annotations.get(REPLACES_ANNOTATION, "")
            if s.kind == "claim" and node in replaces.split(",") and s.name not in out:
                out.append(s.name)
        return out

    async def replacement_of(self, node: str, *, within: float) -> str:
        async def made() -> str | None:
            found = self.claims_replacing(node)
            return found[0] if found else None

        return await eventually(made, within=within, what=f"a replacement NodeClaim for {node}")

    def longest_pending(self) -> tuple[float, str]:
        """The longest any pod the timeline saw created waited to run (to now if it still
        waits), and its name. Pods it found Running do not count; a deleted pod stops
        waiting."""
        now = asyncio.get_running_loop().time()
        start: dict[str, tuple[float, str]] = {}
        end: dict[str, float] = {}
        for s in self.seen:
            if s.kind != "pod":
                continue
            meta = ObjectMeta.of(s.obj)
            running = (s.obj.get("status") or {}).get("phase") == "Running"
            if meta.uid not in start and meta.uid not in end:
                if s.type == "LISTED" and running:
                    end[meta.uid] = s.at
                else:
                    start[meta.uid] = (s.at, meta.name)
            if meta.uid not in end and (running or s.type == "DELETED" or meta.deleting):
                end[meta.uid] = s.at
        waits = [(end.get(uid, now) - at, name) for uid, (at, name) in start.items()]
        return max(waits, default=(0.0, ""))


def _tainted(obj: JSON) -> bool:
    return any(t.get("key") == DISRUPTED for t in (obj.get("spec") or {}).get("taints") or [])


def _initialized(obj: JSON) -> bool:
    cond = _condition(obj, "Initialized")
    return cond is not None and cond["status"] == "True"


def _deleting(obj: JSON) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def _time(text: str) -> datetime:
    return parse_rfc3339(text).replace(microsecond=0)


# --- the shared checks ----------------------------------------------------------------------


@dataclass(frozen=True)
class Replaced:
    claim: JSON
    """The replacement NodeClaim, as it is now."""
    pods: list[JSON]
    """The app's pods, all Running on it."""


async def _replaced_first(
    t: Tenant, timeline: Timeline, *, old: JSON, app: str, count: int
) -> Replaced:
    """Wait for the NodeClaim ``old`` and its node to go and ``app``'s ``count`` pods to run
    on the one replacement made for it; assert the replacement was Initialized before the old
    claim was deleted and before any pod left the old node, and the old node was tainted."""
    claim_name = ObjectMeta.of(old).name
    node_name = str(old["status"]["nodeName"])
    await _claim_and_node_gone(t, claim_name, node_name)
    made = timeline.claims_replacing(node_name)
    assert len(made) == 1, f"{node_name} replaced by {made}"
    (name,) = made

    async def initialized() -> Seen | None:
        return timeline.first("claim", name, _initialized)

    up = await eventually(initialized, within=60, what=f"replacement {name} Initialized")
    gone = timeline.first("claim", claim_name, _deleting)
    assert gone is not None, f"NodeClaim {claim_name} never seen deleting"
    # One stream, in etcd's order: the replacement was up before the old claim was deleted.
    assert up.seq < gone.seq, f"{claim_name} deleted before its replacement {name} was up"
    assert timeline.first("node", node_name, _tainted) is not None, f"{node_name} never tainted"
    cond = _condition(up.obj, "Initialized")
    assert cond is not None
    ready_at = _time(cond["lastTransitionTime"])
    left = [
        s.obj
        for s in timeline.seen
        if s.kind == "pod" and s.obj["spec"].get("nodeName") == node_name and _deleting(s.obj)
    ]
    assert left, f"no pod seen leaving {node_name}"
    for pod in left:
        when = _time(pod["metadata"]["deletionTimestamp"])
        assert when >= ready_at, f"pod {ObjectMeta.of(pod).name} evicted before {name} was up"
    claim, pods = await _running_on(t, app, count, name)
    return Replaced(claim, pods)


async def _running_on(t: Tenant, app: str, count: int, claim: str) -> tuple[JSON, list[JSON]]:
    """Wait for ``app``'s ``count`` pods to be Running on the node of NodeClaim ``claim``."""

    async def there() -> tuple[JSON, list[JSON]] | None:
        obj = await t.api.get(NODECLAIMS, claim)
        node = (obj.get("status") or {}).get("nodeName")
        pods = await t.pods(app)
        ok = len(pods) == count and all(
            p["status"].get("phase") == "Running" and p["spec"].get("nodeName") == node
            for p in pods
        )
        return (obj, pods) if node and ok else None

    return await eventually(there, within=90, what=f"{count} {app} pods Running on {claim}")


def _pool(t: Tenant, suffix: str, **template_spec: object) -> JSON:
    """A pool of the tenant with consolidation off (only drift and expiry act), its own node
    label, and every node of it disruptable at once."""
    pool = _consolidating(t, suffix, after="Never")
    pool["spec"]["template"]["metadata"]["labels"][POOL_KEY] = suffix
    pool["spec"]["template"]["spec"].update(template_spec)
    return pool


async def _deploy(t: Tenant, app: str, suffix: str, replicas: int = 1) -> None:
    await t.deployment(app, replicas, nodeSelector={POOL_KEY: suffix})


async def _only_claim(t: Tenant, pool: JSON) -> JSON:
    """The pool's one NodeClaim, once Initialized (its pods may run before its status is
    written)."""
    name = pool["metadata"]["name"]

    async def one() -> JSON | None:
        claims = await t.claims(name)
        return claims[0] if len(claims) == 1 and _initialized(claims[0]) else None

    return await eventually(one, within=60, what=f"the one NodeClaim of {name} Initialized")


def _requirements(pool: JSON, types: list[str]) -> JSON:
    reqs = [r for r in pool["spec"]["template"]["spec"]["requirements"] if r["key"] != TYPE]
    reqs.append({"key": TYPE, "operator": "In", "values": types})
    return {"spec": {"template": {"spec": {"requirements": reqs}}}}


def _drifted_reason(timeline: Timeline, claim: str) -> str | None:
    for s in timeline.versions("claim", claim):
        cond = _condition(s.obj, "Drifted")
        if cond is not None and cond["status"] == "True":
            return str(cond["reason"])
    return None


# --- 5. drift and expiry replace nodes ------------------------------------------------------


async def test_drift_and_expiry_replace_nodes_before_their_pods_move(tenant: Tenant) -> None:
    """Four pools at once (their waits overlap): one loses its node's instance type from its
    requirements, one changes its template's labels, one's NodeClass changes, one has
    ``expireAfter: 2m``. Each drifted node is replaced by one new node that is Initialized
    before the old one is drained; the expired one goes once 2 min old and its pod runs on a
    new node; no pod waits more than 90 s meanwhile."""
    tenant.flags = FAST
    await tenant.create_nodeclass()
    other = f"{tenant.nodeclass}-b"
    await tenant.api.create(
        NODECLASSES,
        {
            "apiVersion": "updraft.io/v1alpha1",
            "kind": "NodeClass",
            "metadata": {"name": other},
            "spec": {"zones": ["us-east-1a", "us-east-1b"]},
        },
    )
    try:
        await _drift_and_expiry(tenant, other)
    finally:
        await tenant.cleanup()  # the pools go before the NodeClass they use
        await tenant.api.delete(NODECLASSES, other)


async def _drift_and_expiry(t: Tenant, other_class: str) -> None:
    await t.start()
    req = _pool(t, "req")
    tmpl = _pool(t, "tmpl")
    klass = _pool(t, "class")
    klass["spec"]["template"]["spec"]["nodeClassRef"]["name"] = other_class
    expiring = _pool(t, "expire", expireAfter="2m")
    pools = {"req": req, "tmpl": tmpl, "class": klass, "expire": expiring}
    for suffix, pool in pools.items():
        await t.create_pool(pool)
        await _deploy(t, f"app-{suffix}", suffix)
    for suffix in pools:
        await t.running(f"app-{suffix}", 1)
    old = {suffix: await _only_claim(t, pool) for suffix, pool in pools.items()}
    (first_type,) = {c["metadata"]["labels"][TYPE] for c in old.values()}
    assert first_type == "c5.large"  # the cheapest of the three for one 1-cpu pod

    timeline = Timeline(t.api, t.namespace)
    await timeline.start()
    try:
        await t.api.patch(
            NODEPOOLS, req["metadata"]["name"], _requirements(req, ["m5.large", "m5.xlarge"])
        )
        labels = {"spec": {"template": {"metadata": {"labels": {"e2e.updraft.io/rev": "2"}}}}}
        await t.api.patch(NODEPOOLS, tmpl["metadata"]["name"], labels)
        zones = {"spec": {"zones": ["us-east-1a", "us-east-1b", "us-east-1c"]}}
        await t.api.patch(NODECLASSES, other_class, zones)

        done = await _replaced_first(t, timeline, old=old["req"], app="app-req", count=1)
        assert done.claim["metadata"]["labels"][TYPE] == "m5.large"
        reason = _drifted_reason(timeline, old["req"]["metadata"]["name"])
        assert reason == "RequirementsDrifted"

        done = await _replaced_first(t, timeline, old=old["tmpl"], app="app-tmpl", count=1)
        node = await t.api.get(NODES, done.claim["status"]["nodeName"])
        assert node["metadata"]["labels"]["e2e.updraft.io/rev"] == "2"
        assert _drifted_reason(timeline, old["tmpl"]["metadata"]["name"]) == "NodePoolDrifted"

        await _replaced_first(t, timeline, old=old["class"], app="app-class", count=1)
        assert _drifted_reason(timeline, old["class"]["metadata"]["name"]) == "NodeClassDrifted"
        for suffix in ("req", "tmpl", "class"):
            assert len(await t.claims(pools[suffix]["metadata"]["name"])) == 1

        # Expiry: the claim goes once 2 min old (give it a minute more) and its pod moves.
        expired = old["expire"]
        name = expired["metadata"]["name"]
        born = parse_rfc3339(expired["metadata"]["creationTimestamp"])
        age = (datetime.now(born.tzinfo) - born).total_seconds()

        async def deleting() -> bool | None:
            seen = timeline.first("claim", name, _deleting)
            return True if seen is not None else None

        await eventually(deleting, within=max(0.0, 120 - age) + 60, what=f"{name} expired")
        gone = timeline.first("claim", name, _deleting)
        assert gone is not None
        deleted_at = parse_rfc3339(gone.obj["metadata"]["deletionTimestamp"])
        assert (deleted_at - born).total_seconds() >= 120  # not before its time
        assert any("expireAfter" in e["message"] for e in await _claim_events(t, name, "Expired"))
        await _claim_and_node_gone(t, name, str(expired["status"]["nodeName"]))

        async def renewed() -> str | None:
            names = [c["metadata"]["name"] for c in await t.claims(expiring["metadata"]["name"])]
            return names[0] if len(names) == 1 and names[0] != name else None

        fresh = await eventually(renewed, within=90, what=f"one new node in place of {name}")
        await _running_on(t, "app-expire", 1, fresh)

        waited, who = timeline.longest_pending()
        assert waited < PENDING_BOUND, f"pod {who} waited {waited:.0f} s for a node"
    finally:
        await timeline.stop()


# --- 6. a provisioner killed in the middle of a replace -------------------------------------


async def test_killed_mid_replace_restarts_to_the_right_end_state(tenant: Tenant) -> None:
    """Drift replaces the pool's one node twice, and the provisioner is SIGKILLed in the
    middle each time, then started again:

    1. once the replacement NodeClaim exists but has not launched yet (old node tainted,
       nothing deleted): the restarted controller must not launch a second replacement, must
       leave no taint behind, and the old node goes only once the replacement is Initialized;
    2. while the old node drains, held by a pod made do-not-disrupt meanwhile: the restarted
       controller keeps it tainted and drains it once the pod may go.

    Each time, exactly one NodeClaim (the replacement made before the kill) and one node of
    the expected type are left, no node carries the disrupted taint, and the Deployment runs
    whole, no pod having waited more than 90 s for a node."""
    tenant.flags = FAST
    # Each launch takes 4 s before its node appears: the window to kill the process in.
    await tenant.create_nodeclass(launchDelay="4s")
    process = await tenant.start()
    pool = _pool(tenant, "crash")
    name = pool["metadata"]["name"]
    await tenant.create_pool(pool)
    await _deploy(tenant, "app", "crash")
    await tenant.running("app", 1)
    old = await _only_claim(tenant, pool)
    assert old["metadata"]["labels"][TYPE] == "c5.large"
    old_node = str(old["status"]["nodeName"])

    timeline = Timeline(tenant.api, tenant.namespace)
    await timeline.start()
    try:
        # 1. killed between creating the replacement and deleting the old claim
        await tenant.api.patch(NODEPOOLS, name, _requirements(pool, ["m5.large", "m5.xlarge"]))
        first = await timeline.replacement_of(old_node, within=60)
        process.kill()
        made = await tenant.api.get(NODECLAIMS, first)
        assert not _initialized(made), "the kill came after the replacement was up"
        assert not _deleting(await tenant.api.get(NODECLAIMS, old["metadata"]["name"]))
        assert _tainted(await tenant.api.get(NODES, old_node))

        await tenant.start()  # waits for the killed process's lease to expire
        done = await _replaced_first(tenant, timeline, old=old, app="app", count=1)
        await _settled(tenant, timeline, name, claim=first, itype="m5.large")

        # 2. killed while the old node drains, a do-not-disrupt pod holding it
        (pod,) = done.pods
        node = str(done.claim["status"]["nodeName"])
        await tenant.api.patch(NODEPOOLS, name, _requirements(pool, ["m5.xlarge"]))
        second = await timeline.replacement_of(node, within=90)  # after the 20 s nomination
        held = {"metadata": {"annotations": {"karpenter.sh/do-not-disrupt": "true"}}}
        await tenant.api.patch(PODS, pod["metadata"]["name"], held, tenant.namespace)

        async def draining() -> JSON | None:
            claim = await tenant.api.get(NODECLAIMS, first)
            cond = _condition(claim, "Drained")
            waits = cond is not None and "do-not-disrupt" in cond.get("message", "")
            return claim if _deleting(claim) and waits else None

        await eventually(
            draining, within=90, what=f"{first} draining, held by {pod['metadata']['name']}"
        )
        process.kill()
        await tenant.start()
        let_go = {"metadata": {"annotations": {"karpenter.sh/do-not-disrupt": None}}}
        await tenant.api.patch(PODS, pod["metadata"]["name"], let_go, tenant.namespace)
        await _replaced_first(tenant, timeline, old=done.claim, app="app", count=1)
        await _settled(tenant, timeline, name, claim=second, itype="m5.xlarge")
        # From the first taint on, the draining node never lost it: no pod could land there.
        versions = timeline.versions("node", node)
        since = next(i for i, s in enumerate(versions) if _tainted(s.obj))
        assert all(_tainted(s.obj) for s in versions[since:] if s.type != "DELETED")
    finally:
        await timeline.stop()


async def test_killed_after_the_taint_before_any_replacement_rolls_back(tenant: Tenant) -> None:
    """The third crash point: a command had annotated its candidate and tainted the node, and
    the process died before it created a replacement (the state is written here as such a
    process leaves it; the window between the two calls is too short to hit with a signal).
    The restarted provisioner rolls the command back: the taint and the command's
    annotations come off, no replacement is launched, and the pod never leaves its node."""
    tenant.flags = FAST
    await tenant.create_nodeclass()
    process = await tenant.start()
    pool = _pool(tenant, "half")
    await tenant.create_pool(pool)
    await _deploy(tenant, "app", "half")
    (pod,) = await tenant.running("app", 1)
    claim = await _only_claim(tenant, pool)
    name, node = ObjectMeta.of(claim).name, str(claim["status"]["nodeName"])
    process.kill()
    marks = {COMMAND_ANNOTATION: "killed-before-replacing", REASON_ANNOTATION: "Underutilized"}
    await tenant.api.patch(NODECLAIMS, name, {"metadata": {"annotations": marks}})
    taints = disrupted_taints(await tenant.api.get(NODES, node), present=True)
    await tenant.api.patch(NODES, node, {"spec": {"taints": taints}})

    await tenant.start()  # waits for the killed process's lease to expire

    async def rolled_back() -> JSON | None:
        obj = await tenant.api.get(NODECLAIMS, name)
        left = set(marks) & set(ObjectMeta.of(obj).annotations)
        untainted = not _tainted(await tenant.api.get(NODES, node))
        return obj if untainted and not left else None

    await eventually(rolled_back, within=60, what=f"{name}'s half-made command rolled back")
    claims = await tenant.claims(pool["metadata"]["name"])
    assert [ObjectMeta.of(c).name for c in claims] == [name], "a replacement was launched"
    assert not _deleting(claims[0])
    (after,) = await tenant.running("app", 1)
    assert ObjectMeta.of(after).uid == ObjectMeta.of(pod).uid, "the pod was moved"
    assert after["spec"]["nodeName"] == node


async def _settled(t: Tenant, timeline: Timeline, pool: str, *, claim: str, itype: str) -> None:
    """Exactly ``claim`` and its node are left in ``pool``, of ``itype``, untainted; the app
    runs whole on it and no pod waited too long."""
    claims = await t.claims(pool)
    assert [c["metadata"]["name"] for c in claims] == [claim], "a duplicate or lost NodeClaim"
    nodes = await t.nodes(pool)
    assert [n["metadata"]["name"] for n in nodes] == [claims[0]["status"]["nodeName"]]
    assert nodes[0]["metadata"]["labels"][TYPE] == itype
    assert not _tainted(nodes[0]), f"{DISRUPTED} left on {nodes[0]['metadata']['name']}"
    (pod,) = await t.running("app", 1)
    assert pod["spec"]["nodeName"] == nodes[0]["metadata"]["name"]
    waited, who = timeline.longest_pending()
    assert waited < PENDING_BOUND, f"pod {who} waited {waited:.0f} s for a node"


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
