"""Termination: a deleted NodeClaim's node is cordoned, drained, its instance deleted, then let go.

Owns every step between a NodeClaim's deletion (by a user, by the disruption controller once
the replacements are Initialized, or because its Node was deleted) and its finalizer coming
off: taint the Node ``updraft.io/disrupted:NoSchedule``; evict its pods through the Eviction
API in tiers (non-critical first, then ``system-cluster-critical``/``system-node-critical``),
leaving DaemonSet and mirror pods alone, waiting for do-not-disrupt pods, retrying evictions a
PodDisruptionBudget refuses with backoff (a ``DisruptionBlocked`` Event names the pod and the
PDB); past the claim's ``terminationGracePeriod`` (less each pod's own grace) pods are deleted
outright; then the cloud provider's delete until the instance is NotFound; then the Node goes
(its ``updraft.io/termination`` finalizer off); then the claim's finalizer comes off.

Every step is derived from what is observed (taint present? pods left? instance gone? Node
gone?), so a controller killed at any point resumes where it was. ``release_orphans`` takes
the disrupted taint off nodes no termination or disruption command owns, so a crash between
tainting and deleting never leaves a node cordoned. It must not decide which nodes go.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from kits import Clock, SystemClock, format_rfc3339, parse_rfc3339
from kube import (
    JSON,
    NODES,
    PODS,
    Api,
    ApiError,
    ConflictError,
    EventSeries,
    NotFoundError,
    ObjectMeta,
    Resource,
    record_event,
)
from provisioner.claims import NodeClaimView
from provisioner.cloud.provider import CloudProvider
from provisioner.controllers import metrics
from provisioner.controllers.nodepools import COMPONENT
from provisioner.controllers.patching import (
    claim_object,
    disruption_blocked,
    patch_claim_status,
)
from provisioner.controllers.state import ClusterState
from provisioner.errors import InstanceNotFoundError, InvalidFieldError
from provisioner.labels import DISRUPTED_TAINT, DO_NOT_DISRUPT
from provisioner.objects import FINALIZER, NODECLAIMS, disrupted_taints
from provisioner.parsing import label_selector

__all__ = [
    "CRITICAL_PRIORITY_CLASSES",
    "NODE_FINALIZER",
    "PDBS",
    "Drain",
    "Termination",
    "delete_at",
    "plan_drain",
]

log = logging.getLogger(__name__)

NODE_FINALIZER = FINALIZER
"""Held on every managed Node from registration, so a deleted Node is drained before it goes."""
CRITICAL_PRIORITY_CLASSES = frozenset({"system-cluster-critical", "system-node-critical"})
STUCK_AFTER = 60.0
"""Seconds past its deletion timestamp after which a terminating pod no longer holds the node
up (its kubelet is gone or stuck; waiting longer would wait forever), as Karpenter does."""
DEFAULT_POD_GRACE = 30.0
"""A pod without ``terminationGracePeriodSeconds`` gets Kubernetes' default."""
PDBS = Resource("policy", "v1", "poddisruptionbudgets", namespaced=True)
_BACKOFF_FIRST = 1.0
_BACKOFF_MAX = 10.0
"""Seconds between eviction attempts of one pod: doubling from 1 s to 10 s, so a PDB that
frees up is noticed within 10 s and a blocked pod costs at most one POST per 10 s."""


# --- the drain's decisions (pure) -----------------------------------------------------------


@dataclass(frozen=True)
class Drain:
    """What one pass over a node's pods does."""

    evict: tuple[JSON, ...]
    """Pods of the lowest tier still present, to evict now."""
    delete: tuple[JSON, ...]
    """Pods past (deadline - their grace): deleted directly, PDBs and do-not-disrupt aside."""
    waiting: tuple[JSON, ...]
    """do-not-disrupt pods the node waits for."""
    left: tuple[JSON, ...]
    """Every pod the node still waits for (terminating ones included)."""

    @property
    def done(self) -> bool:
        return not self.left


def _deletion(pod: Mapping[str, Any]) -> datetime | None:
    text = (pod.get("metadata") or {}).get("deletionTimestamp")
    if not text:
        return None
    try:
        return parse_rfc3339(str(text))
    except ValueError:
        return None


def drainable(pod: Mapping[str, Any], *, now: datetime) -> bool:
    """A pod the drain waits for: not a DaemonSet's, not a mirror (static) pod, not finished,
    not terminating for longer than a minute."""
    meta = pod.get("metadata") or {}
    if any(o.get("kind") == "DaemonSet" for o in meta.get("ownerReferences") or []):
        return False
    if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
        return False
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    deleted = _deletion(pod)
    return deleted is None or (now - deleted).total_seconds() <= STUCK_AFTER


def tier(pod: Mapping[str, Any]) -> int:
    """0 for ordinary pods, 1 for critical ones (evicted only once tier 0 is gone)."""
    critical = (pod.get("spec") or {}).get("priorityClassName") in CRITICAL_PRIORITY_CLASSES
    return 1 if critical else 0


def do_not_disrupt(pod: Mapping[str, Any]) -> bool:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return any(annotations.get(key) == "true" for key in DO_NOT_DISRUPT)


def pod_grace(pod: Mapping[str, Any]) -> float:
    value = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
    return float(value) if isinstance(value, int | float) else DEFAULT_POD_GRACE


def delete_at(deadline: datetime, grace: float) -> datetime:
    """When a pod with ``grace`` seconds to stop must be deleted to be gone by ``deadline``."""
    return deadline - timedelta(seconds=grace)


def plan_drain(
    pods: Iterable[Mapping[str, Any]], *, now: datetime, deadline: datetime | None
) -> Drain:
    """One step of draining a node whose pods are ``pods``, ``deadline`` its hard end."""
    left = [dict(p) for p in pods if drainable(p, now=now)]
    delete = [
        p
        for p in left
        if deadline is not None
        and _deletion(p) is None
        and now >= delete_at(deadline, pod_grace(p))
    ]
    doomed = {id(p) for p in delete}
    live = [p for p in left if id(p) not in doomed]
    lowest = min((tier(p) for p in live), default=0)
    current = [p for p in live if tier(p) == lowest and _deletion(p) is None]
    return Drain(
        evict=tuple(p for p in current if not do_not_disrupt(p)),
        delete=tuple(delete),
        waiting=tuple(p for p in live if do_not_disrupt(p) and _deletion(p) is None),
        left=tuple(left),
    )


def _names(pods: Sequence[Mapping[str, Any]], first: int = 3) -> str:
    shown = [_key(p) for p in pods[:first]]
    more = f" and {len(pods) - first} more" if len(pods) > first else ""
    return ", ".join(shown) + more


def _key(pod: Mapping[str, Any]) -> str:
    meta = ObjectMeta.of(pod)
    return f"{meta.namespace}/{meta.name}"


def _has_taint(node: Mapping[str, Any], key: str) -> bool:
    return any(t.get("key") == key for t in (node.get("spec") or {}).get("taints") or [])


# --- the controller -------------------------------------------------------------------------


@dataclass
class _Backoff:
    retry_at: float
    delay: float
    why: str = ""
    """Why the last attempt failed, for the Drained message while we wait to retry."""


class Termination:
    def __init__(
        self,
        api: Api,
        state: ClusterState,
        provider: CloudProvider,
        *,
        event_repeat: float,
        owned: Callable[[], Collection[str]] = frozenset,
        clock: Clock | None = None,
    ) -> None:
        self._api = api
        self._state = state
        self._provider = provider
        self._owned = owned
        """Names of the NodeClaims (or Nodes) an in-flight disruption command has tainted."""
        self._clock = clock or SystemClock()
        self._events = EventSeries(api, component=COMPONENT, interval=event_repeat)
        self._backoff: dict[str, _Backoff] = {}
        """Pod UID -> when to try evicting it again."""

    # -- the nodes of claims

    def node_of(self, claim: NodeClaimView) -> JSON | None:
        for node in self._state.nodes.store.values():
            spec = node.get("spec") or {}
            if claim.provider_id and spec.get("providerID") == claim.provider_id:
                return node
        if claim.node_name:
            return self._state.nodes.store.get(("", claim.node_name))
        return None

    def _claim_of(self, node: Mapping[str, Any]) -> NodeClaimView | None:
        meta = ObjectMeta.of(node)
        provider_id = (node.get("spec") or {}).get("providerID")
        for claim in self._state.claims().values():
            if (provider_id and claim.provider_id == provider_id) or claim.node_name == meta.name:
                return claim
        return None

    async def adopt(self, node: Mapping[str, Any]) -> None:
        """Put the termination finalizer on a managed Node, so deleting it drains it first."""
        meta = ObjectMeta.of(node)
        if meta.deleting or NODE_FINALIZER in meta.finalizers:
            return
        await self._patch_node(
            node, {"metadata": {"finalizers": [*meta.finalizers, NODE_FINALIZER]}}
        )

    async def release_orphans(self, owned: Collection[str] | None = None) -> None:
        """Untaint nodes whose claim is not being deleted and that no disruption command owns
        (``owned``: NodeClaim or Node names; default: what the ``owned`` callback says); let go
        of deleting Nodes that hold our finalizer but have no NodeClaim any more."""
        owned = set(self._owned() if owned is None else owned)
        for node in list(self._state.nodes.store.values()):
            meta = ObjectMeta.of(node)
            tainted = _has_taint(node, DISRUPTED_TAINT)
            held = meta.deleting and NODE_FINALIZER in meta.finalizers
            if not tainted and not held:
                continue
            claim = self._claim_of(node)
            if claim is None and held:
                await self._let_go(node)
                continue
            if not tainted or meta.deleting or meta.name in owned:
                continue
            if claim is not None and (claim.meta.deleting or claim.name in owned):
                continue
            log.info("node %s: disrupted taint left by no termination; removed", meta.name)
            await self._set_taint(node, present=False)

    # -- one step of one deleting claim

    async def terminate(self, claim: NodeClaimView) -> None:
        """Move a deleting NodeClaim (holding our finalizer) one step on; safe to repeat."""
        node = self.node_of(claim)
        if node is not None and not await self._drain(claim, node):
            return
        try:
            await self._provider.delete(claim)
        except InstanceNotFoundError:
            pass
        else:
            if not claim.is_true("InstanceTerminating"):
                await patch_claim_status(
                    self._api,
                    self._state,
                    claim,
                    {},
                    ("InstanceTerminating", True, "InstanceTerminating", "instance deleting"),
                )
            return
        if node is not None:
            await self._let_go(node)
            return  # the next pass sees the Node gone
        await self._release_claim(claim)

    async def _drain(self, claim: NodeClaimView, node: JSON) -> bool:
        """One drain step; True once nothing is left to wait for."""
        await self._set_taint(node, present=True)
        now = self._clock.now()
        deadline = claim.deadline
        name = ObjectMeta.of(node).name
        drain = plan_drain(self._state.pods_by_node().get(name, []), now=now, deadline=deadline)
        if drain.done:
            if not claim.is_true("Drained"):
                self._observe_drain(claim, now)
                await patch_claim_status(
                    self._api, self._state, claim, {}, ("Drained", True, "Drained", "")
                )
                log.info("NodeClaim %s: node %s drained", claim.name, name)
            return True
        if deadline is not None:
            for pod in drain.delete:
                await self._delete_pod(claim, node, pod, deadline)
        blocked: list[str] = []
        for pod in drain.evict:
            why = await self._evict(claim, node, pod)
            if why:
                blocked.append(why)
        for pod in drain.waiting:
            why = f"pod {_key(pod)} is do-not-disrupt: waiting for it to finish"
            if deadline is not None:
                why += f" (or until {format_rfc3339(deadline)})"
            blocked.append(why)
            await self._blocked(claim, node, why)
        message = f"waiting for {len(drain.left)} pods to leave: {_names(drain.left)}"
        if blocked:
            message += "; " + "; ".join(blocked[:3])
        current = claim.conditions.get("Drained")
        if current is None or current.status != "False" or current.message != message:
            await patch_claim_status(
                self._api, self._state, claim, {}, ("Drained", False, "Draining", message)
            )
        return False

    def _observe_drain(self, claim: NodeClaimView, now: datetime) -> None:
        try:
            deleted = parse_rfc3339(claim.meta.deletion_timestamp)
        except ValueError:
            return
        metrics.DRAIN_DURATION.observe(max(0.0, (now - deleted).total_seconds()))

    async def _evict(self, claim: NodeClaimView, node: JSON, pod: JSON) -> str:
        """Ask the Eviction API to evict ``pod``; why it could not, or ""."""
        meta = ObjectMeta.of(pod)
        key = meta.uid or _key(pod)
        wait = self._backoff.get(key)
        clock = time.monotonic()
        if wait is not None and clock < wait.retry_at:
            return wait.why
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": meta.name, "namespace": meta.namespace},
            "deleteOptions": {"preconditions": {"uid": meta.uid}} if meta.uid else {},
        }
        delay = min(wait.delay * 2, _BACKOFF_MAX) if wait is not None else _BACKOFF_FIRST
        try:
            await self._api.request(
                "POST", PODS.path(meta.namespace, meta.name) + "/eviction", body=body
            )
        except (NotFoundError, ConflictError):
            metrics.EVICTIONS.labels("gone").inc()  # deleted, or replaced by a pod of that name
            return ""
        except ApiError as e:
            if e.code != 429:
                metrics.EVICTIONS.labels("failed").inc()
                why = f"evicting pod {_key(pod)} failed: {e}"
                log.warning("NodeClaim %s: %s; retrying", claim.name, why)
                self._backoff[key] = _Backoff(clock + delay, delay, why)
                return why
            metrics.EVICTIONS.labels("blocked").inc()
            why = await self._why_blocked(pod)
            self._backoff[key] = _Backoff(clock + delay, delay, why)
            await self._blocked(claim, node, why)
            return why
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            metrics.EVICTIONS.labels("failed").inc()
            self._backoff[key] = _Backoff(clock + delay, delay, f"evicting pod {_key(pod)}: {e}")
            return self._backoff[key].why
        metrics.EVICTIONS.labels("evicted").inc()
        # Evicted: the informer shows it terminating soon; do not ask again before that.
        self._backoff[key] = _Backoff(clock + _BACKOFF_MAX, _BACKOFF_FIRST)
        log.info("NodeClaim %s: evicted pod %s", claim.name, _key(pod))
        return ""

    async def _why_blocked(self, pod: JSON) -> str:
        meta = ObjectMeta.of(pod)
        names: list[str] = []
        try:
            pdbs, _ = await self._api.list(PDBS, meta.namespace)
        except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as e:
            log.warning("listing PodDisruptionBudgets in %s: %s", meta.namespace, e)
            pdbs = []
        for pdb in pdbs:
            try:
                selector = label_selector(pdb.get("spec") or {}, "selector", "spec")
            except InvalidFieldError:
                continue
            if selector is not None and selector.match_labels(meta.labels) is None:
                names.append(ObjectMeta.of(pdb).name)
        budgets = ", ".join(f"PodDisruptionBudget {meta.namespace}/{n}" for n in sorted(names))
        return (
            f"pod {_key(pod)} cannot be evicted: {budgets or 'a PodDisruptionBudget'} "
            "allows no disruption now; retrying"
        )

    async def _blocked(self, claim: NodeClaimView, node: JSON, why: str) -> None:
        await disruption_blocked(self._events, claim, node, why, type_="Warning")

    async def _delete_pod(
        self, claim: NodeClaimView, node: JSON, pod: JSON, deadline: datetime
    ) -> None:
        meta = ObjectMeta.of(pod)
        grace = max(0, int((deadline - self._clock.now()).total_seconds()))
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": grace}
        if meta.uid:
            body["preconditions"] = {"uid": meta.uid}
        try:
            await self._api.request("DELETE", PODS.path(meta.namespace, meta.name), body=body)
        except (NotFoundError, ConflictError):
            return
        metrics.EVICTIONS.labels("deleted").inc()
        message = (
            f"deleted pod {_key(pod)} (grace {grace} s): the NodeClaim's terminationGracePeriod "
            f"ends at {format_rfc3339(deadline)}"
        )
        log.info("NodeClaim %s: %s", claim.name, message)
        for involved in (
            claim_object(claim),
            {**pod, "apiVersion": "v1", "kind": "Pod"},
        ):
            await record_event(
                self._api,
                involved,
                type_="Warning",
                reason="TerminationGracePeriodExpiring",
                message=message,
                component=COMPONENT,
            )

    # -- writes on nodes and claims

    async def _set_taint(self, node: JSON, *, present: bool) -> None:
        taints = disrupted_taints(node, present=present)
        if taints is None:
            return
        await self._patch_node(node, {"spec": {"taints": taints}})

    async def _let_go(self, node: JSON) -> None:
        """Take our finalizer off the Node (deleting it first if nobody has): it goes."""
        meta = ObjectMeta.of(node)
        if not meta.deleting:
            try:
                await self._api.delete(NODES, meta.name)
            except NotFoundError:
                return
        if NODE_FINALIZER in meta.finalizers:
            rest = [f for f in meta.finalizers if f != NODE_FINALIZER]
            await self._patch_node(node, {"metadata": {"finalizers": rest}})
            log.info("node %s: finalizer removed", meta.name)

    async def _patch_node(self, node: Mapping[str, Any], patch: JSON) -> None:
        """A merge patch made against the version we read: a Node changed since (its status,
        a taint someone else set) is a conflict, left for the next pass to redo from fresh."""
        meta = ObjectMeta.of(node)
        body = {
            **patch,
            "metadata": {**patch.get("metadata", {}), "resourceVersion": meta.resource_version},
        }
        try:
            await self._api.patch(NODES, meta.name, body)
        except (ConflictError, NotFoundError) as e:
            log.debug("node %s changed under us (%s); next pass", meta.name, e)

    async def _release_claim(self, claim: NodeClaimView) -> None:
        finalizers = [f for f in claim.meta.finalizers if f != FINALIZER]
        try:
            updated = await self._api.patch(
                NODECLAIMS, claim.name, {"metadata": {"finalizers": finalizers}}
            )
        except NotFoundError:
            self._state.forget(claim.name)
            return
        self._state.note(updated)
        for pod_key in [k for k in self._backoff if k not in self._live_pods()]:
            del self._backoff[pod_key]
        log.info("NodeClaim %s: drained, instance and node gone; finalizer removed", claim.name)

    def _live_pods(self) -> set[str]:
        out = set()
        for pod in self._state.pods.store.values():
            meta = ObjectMeta.of(pod)
            out.add(meta.uid or _key(pod))
        return out
