"""Which nodes may be disrupted now, and why the others may not.

Owns ``Candidate`` (a managed node with its NodeClaim, price, reschedulable pods, whether it
is consolidatable and whether it has drifted), ``Blocked`` (a node that is not a candidate,
with the pod, PDB or annotation to blame) and the rules: a candidate is our NodeClaim's node
(pool label), initialized, not deleting, not nominated, carries no do-not-disrupt annotation
(nor does any of its pods, value "true"), and every pod it would evict is allowed to go by
its PodDisruptionBudgets (a pod under a PDB with ``disruptionsAllowed`` 0, or under more than
one PDB, blocks). Pure: the cluster and the time come in as arguments.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kits import parse_rfc3339
from kube import JSON, ObjectMeta
from provisioner.claims import NodeClaimView
from provisioner.disruption.policy import PoolPolicy
from provisioner.errors import InvalidFieldError
from provisioner.labels import DO_NOT_DISRUPT
from provisioner.model import NodePool, Pod
from provisioner.objects import NODECLASS_HASH_ANNOTATION, NODEPOOL_HASH_ANNOTATION
from provisioner.parsing import label_selector, pod_from_k8s

__all__ = [
    "Blocked",
    "Candidate",
    "consolidatable",
    "drift_of",
    "eviction_cost",
    "find_candidates",
    "reschedulable",
]

LAST_POD_EVENT = "lastPodEventTime"


@dataclass(frozen=True, eq=False)
class Candidate:
    claim: NodeClaimView
    node: JSON
    pool: str
    policy: PoolPolicy
    price: float
    """USD/h of its launched offering."""
    pods: tuple[Pod, ...]
    """The pods a disruption would evict and the scheduler must place again."""
    consolidatable: bool
    drifted: str | None
    """Why it has drifted, or None."""
    created: datetime
    eviction_cost: float = 0.0
    """The sum of its pods' positive ``eviction_cost``s: what disrupting it costs."""

    @property
    def name(self) -> str:
        return self.claim.name

    @property
    def node_name(self) -> str:
        return ObjectMeta.of(self.node).name

    @property
    def savings_ratio(self) -> float:
        """Karpenter's order key, price / (1 + eviction cost): the best candidates save much
        and disrupt little."""
        return self.price / (1 + self.eviction_cost)


@dataclass(frozen=True)
class Blocked:
    claim: str
    node: str
    message: str


def _time(text: str) -> datetime | None:
    if not text:
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        return None


def last_pod_event(claim: NodeClaimView) -> datetime | None:
    """``status.lastPodEventTime``, else when it became Initialized."""
    status = claim.raw.get("status") or {}
    seen = _time(str(status.get(LAST_POD_EVENT) or ""))
    if seen is not None:
        return seen
    init = claim.conditions.get("Initialized")
    return _time(init.last_transition_time) if init is not None and init.true else None


def consolidatable(claim: NodeClaimView, policy: PoolPolicy, now: datetime) -> bool:
    """consolidateAfter (not Never) has passed since the last pod event on its node."""
    if policy.consolidate_after is None or not claim.is_true("Initialized"):
        return False
    since = last_pod_event(claim)
    return since is not None and (now - since).total_seconds() >= policy.consolidate_after


def drift_of(
    claim: NodeClaimView,
    node: Mapping[str, Any] | None,
    *,
    policy: PoolPolicy,
    pool: NodePool,
    nodeclass_hash: str,
) -> str | None:
    """Why ``claim`` no longer matches its pool, or None."""
    annotations = claim.meta.annotations
    mine = annotations.get(NODEPOOL_HASH_ANNOTATION)
    if mine is not None and mine != policy.template_hash:
        return "NodePoolDrifted: the NodePool's template changed"
    labels = dict(ObjectMeta.of(node).labels) if node is not None else dict(claim.meta.labels)
    for key, req in pool.requirements.items():
        value = labels.get(key)
        if value is not None and not req.has(value):
            return f"RequirementsDrifted: {key}={value} no longer satisfies {req}"
    theirs = annotations.get(NODECLASS_HASH_ANNOTATION)
    if theirs is not None and nodeclass_hash and theirs != nodeclass_hash:
        return "NodeClassDrifted: the NodeClass changed"
    return None


DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


def eviction_cost(pod: Mapping[str, Any], meta: ObjectMeta | None = None) -> float:
    """Karpenter's cost of evicting ``pod``: 1 + pod-deletion-cost / 2^27 + priority / 2^25,
    clamped to [-10, 10] (the annotation and the priority shift it, a plain pod costs 1).
    ``meta``: the pod's, when the caller has read it already."""
    cost = 1.0
    raw = (meta or ObjectMeta.of(pod)).annotations.get(DELETION_COST)
    if raw is not None:
        # the ReplicaSet controller ignores a malformed cost too
        with contextlib.suppress(ValueError):
            cost += int(raw) / 2**27
    priority = (pod.get("spec") or {}).get("priority")
    if isinstance(priority, int) and not isinstance(priority, bool):
        cost += priority / 2**25
    return min(10.0, max(-10.0, cost))


def reschedulable(pod: Mapping[str, Any], meta: ObjectMeta | None = None) -> bool:
    """A pod disruption would move: running or pending, not terminating, not a DaemonSet's
    or a static (mirror) pod."""
    meta = meta or ObjectMeta.of(pod)
    if meta.deleting or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    if "kubernetes.io/config.mirror" in meta.annotations:
        return False
    return not any(o.kind in ("DaemonSet", "Node") for o in meta.owner_references)


def _pdbs_of(meta: ObjectMeta, pdbs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    out = []
    for pdb in pdbs:
        pmeta = ObjectMeta.of(pdb)
        if pmeta.namespace != meta.namespace:
            continue
        try:
            selector = label_selector(pdb.get("spec") or {}, "selector", "spec")
        except InvalidFieldError:
            continue
        if selector is not None and selector.match_labels(meta.labels) is None:
            out.append(pdb)
    return out


def pod_blocker(
    pod: Mapping[str, Any], pdbs: Sequence[Mapping[str, Any]], meta: ObjectMeta | None = None
) -> str | None:
    """Why evicting ``pod`` is not allowed now, or None."""
    meta = meta or ObjectMeta.of(pod)
    for key in DO_NOT_DISRUPT:
        if meta.annotations.get(key) == "true":
            return f"pod {meta.namespace}/{meta.name} has {key}: true"
    mine = _pdbs_of(meta, pdbs) if pdbs else []
    if len(mine) > 1:
        names = ", ".join(sorted(ObjectMeta.of(p).name for p in mine))
        return f"pod {meta.namespace}/{meta.name} is under more than one PDB ({names})"
    if mine:
        allowed = (mine[0].get("status") or {}).get("disruptionsAllowed", 0)
        if not isinstance(allowed, int) or allowed < 1:
            name = ObjectMeta.of(mine[0]).name
            return (
                f"PDB {meta.namespace}/{name} allows no disruption of pod "
                f"{meta.namespace}/{meta.name}"
            )
    return None


def find_candidates(
    *,
    claims: Mapping[str, NodeClaimView],
    nodes: Mapping[str, JSON],
    pods_by_node: Mapping[str, Sequence[JSON]],
    pdbs: Sequence[JSON],
    policies: Mapping[str, PoolPolicy],
    pools: Mapping[str, NodePool],
    nodeclass_hashes: Mapping[str, str],
    nominated: Mapping[str, str],
    now: datetime,
) -> tuple[list[Candidate], list[Blocked]]:
    """The candidates among ``claims`` (nodes by name; policies and pools by pool name, only
    valid pools; ``nominated``: claim name -> why it is held), and the nodes blocked."""
    candidates: list[Candidate] = []
    blocked: list[Blocked] = []
    for name, claim in sorted(claims.items()):
        pool = claim.pool
        node = nodes.get(claim.node_name) if claim.node_name else None
        if pool is None or pool not in policies or node is None:
            continue
        if claim.meta.deleting or ObjectMeta.of(node).deleting:
            continue
        if not claim.is_true("Initialized"):
            continue
        node_name = ObjectMeta.of(node).name
        if name in nominated:
            blocked.append(Blocked(name, node_name, nominated[name]))
            continue
        node_annotations = ObjectMeta.of(node).annotations
        hit = next((k for k in DO_NOT_DISRUPT if k in node_annotations), None)
        if hit is not None:
            blocked.append(Blocked(name, node_name, f"node {node_name} has {hit}"))
            continue
        # Each pod's metadata read once: the helpers below would each read it again.
        metas = [(p, ObjectMeta.of(p)) for p in pods_by_node.get(node_name, ())]
        moving_metas = [(p, m) for p, m in metas if reschedulable(p, m)]
        moving = [p for p, _ in moving_metas]
        why = next((w for p, m in moving_metas if (w := pod_blocker(p, pdbs, m)) is not None), None)
        if why is not None:
            blocked.append(Blocked(name, node_name, why))
            continue
        parsed: list[Pod] = []
        for raw in moving:
            try:
                parsed.append(pod_from_k8s(raw))
            except InvalidFieldError as e:
                why = f"pod {ObjectMeta.of(raw).name} cannot be simulated: {e}"
                break
        if why is not None:
            blocked.append(Blocked(name, node_name, why))
            continue
        policy = policies[pool]
        candidates.append(
            Candidate(
                claim=claim,
                node=node,
                pool=pool,
                policy=policy,
                price=claim.price,
                pods=tuple(parsed),
                consolidatable=consolidatable(claim, policy, now),
                drifted=drift_of(
                    claim,
                    node,
                    policy=policy,
                    pool=pools[pool],
                    nodeclass_hash=nodeclass_hashes.get(pool, ""),
                ),
                created=_time(claim.meta.creation_timestamp) or now,
                eviction_cost=sum(max(0.0, eviction_cost(p, m)) for p, m in moving_metas),
            )
        )
    return candidates, blocked
