"""The disruption controller: the leader's loop that brings nodes back down.

Owns one pass every ``poll`` seconds: record pod events on each NodeClaim
(``status.lastPodEventTime``), write the ``Consolidatable`` and ``Drifted`` conditions, delete
expired NodeClaims (forceful, no budget: the pending-pod path provisions for their pods),
recover commands nobody runs, then, unless a command is running, try the methods in order
(emptiness, drift, multi-node, single-node consolidation), wait ``validation_delay``, act on
the first command only if recomputing it gives the same command, and tell what it did or what
blocks it (Events, metrics). The simulation's inputs are provisioning's (``cluster_views``);
the decisions are ``methods``', the steps ``orchestration``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import aiohttp

from kits import Clock, SystemClock, cancel_and_wait, format_rfc3339, parse_rfc3339
from kube import JSON, Api, ApiError, EventSeries, ObjectMeta, record_event
from provisioner.catalog import Catalog
from provisioner.claims import NodeClaimView
from provisioner.controllers import metrics
from provisioner.controllers.lifecycle import Lifecycle, phase
from provisioner.controllers.nodepools import COMPONENT, NODE_STATES, NodePoolController
from provisioner.controllers.orchestration import (
    COMMAND_ANNOTATION,
    REPLACES_ANNOTATION,
    Orchestrator,
)
from provisioner.controllers.patching import (
    claim_event,
    disruption_blocked,
    node_object,
    patch_claim_status,
)
from provisioner.controllers.provisioning import cluster_views, daemonset_pods
from provisioner.controllers.state import ClusterState
from provisioner.controllers.termination import PDBS
from provisioner.disruption import methods
from provisioner.disruption.budgets import REASONS, allowed
from provisioner.disruption.candidates import (
    LAST_POD_EVENT,
    Blocked,
    Candidate,
    consolidatable,
    find_candidates,
)
from provisioner.disruption.methods import Cluster, Command
from provisioner.disruption.policy import PoolPolicy
from provisioner.errors import CommandAbandonedError, InvalidFieldError
from provisioner.labels import DISRUPTED_TAINT
from provisioner.objects import (
    NODECLAIMS,
    nodeclass_hash,
    nodeclass_name,
    parse_duration,
)

__all__ = ["DisruptionController", "DisruptionSettings", "node_states"]

log = logging.getLogger(__name__)

_ERRORS = (ApiError, aiohttp.ClientError, OSError, TimeoutError)


@dataclass(frozen=True)
class DisruptionSettings:
    poll: float = 10.0
    """Seconds between passes: Karpenter's disruption loop polls every 10 s too."""
    validation_delay: float = 15.0
    """A command is computed again after this long and runs only if unchanged (Karpenter's
    15 s): pods that were merely between nodes have landed by then."""
    replacement_timeout: float = 600.0
    """Replacements not Initialized by then abandon the command (Karpenter's floor, 10 min)."""
    blocked_event_interval: float = 300.0
    """A DisruptionBlocked Event that stays true is refreshed (its count and lastTimestamp)
    at most this often, per object and message: every pass says it again."""
    nomination_window: float = 20.0
    """A replacement is not a candidate until its predecessors' pods have moved, and this long
    after: room the drain is about to fill is not empty."""


class DisruptionController:
    def __init__(
        self,
        api: Api,
        state: ClusterState,
        *,
        pools: NodePoolController,
        lifecycle: Lifecycle,
        catalog: Catalog,
        settings: DisruptionSettings,
        clock: Clock | None = None,
    ) -> None:
        self._api = api
        self._state = state
        self._pools = pools
        self._catalog = catalog
        self._settings = settings
        self._clock = clock or SystemClock()
        self.orchestrator = Orchestrator(
            api,
            state,
            lifecycle,
            pool_object=lambda name: state.nodepools.store.get(("", name)),
            replacement_timeout=settings.replacement_timeout,
        )
        self._unrecorded: set[str] = set()
        """Nodes with a pod event not yet written to their claim (no claim names them yet, or
        the write failed): tried again next pass."""
        self._blocked_events = EventSeries(
            api, component=COMPONENT, interval=settings.blocked_event_interval, clock=self._clock
        )
        self._running: asyncio.Task[None] | None = None
        self._moved: dict[str, float] = {}
        """Replacement claim -> when its predecessors' pods were all seen gone."""

    async def close(self) -> None:
        await cancel_and_wait(self._running)
        self._running = None

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("disruption pass failed")
            await asyncio.sleep(self._settings.poll)

    # -- one pass --------------------------------------------------------------------------

    async def tick(self) -> None:
        now = self._clock.now()
        claims = self._state.claims()
        await self._track_pods(claims)
        policies = self._policies()
        await self._expire(claims, policies, now)
        if self._running is None or self._running.done():
            await self.orchestrator.recover(self._state.claims())
        snapshot = await self._snapshot(now)
        if snapshot is None:
            return
        candidates, blocked, cluster, room = snapshot
        log.debug(
            "disruption pass: %d candidates (%d consolidatable, %d empty, %d drifted), "
            "%d blocked%s; budget room %s",
            len(candidates),
            sum(c.consolidatable for c in candidates),
            sum(not c.pods for c in candidates),
            sum(c.drifted is not None for c in candidates),
            len(blocked),
            "".join(f"; {b.claim}: {b.message}" for b in blocked[:3]),
            {f"{p}/{r}": n for (p, r), n in sorted(room.items()) if n < 1 << 20} or "unlimited",
        )
        await self._conditions(candidates)
        if self._running is not None and not self._running.done():
            return
        command, why = methods.decide(candidates, room, cluster)
        if command is None and why:
            log.debug("disruption: no command; %s", "; ".join(f"{k}: {v}" for k, v in why.items()))
        await self._report_blocked(blocked, why, candidates, room)
        if command is None:
            return
        log.info(
            "disruption: %s; validating in %g s",
            command.describe(),
            self._settings.validation_delay,
        )
        await asyncio.sleep(self._settings.validation_delay)
        fresh = await self._snapshot(self._clock.now())
        again = self._revalidate(command, fresh) if fresh is not None else None
        if again is None:
            metrics.DISRUPTION_COMMANDS.labels(command.method, "invalidated").inc()
            log.info("disruption: %s no longer valid; not acting", command.describe())
            return
        self._running = asyncio.create_task(self._execute(again), name="disruption command")

    def _policies(self) -> dict[str, tuple[PoolPolicy, JSON]]:
        return {p.name: (PoolPolicy.of(obj), obj) for p, obj in self._pools.ready()}

    async def _snapshot(
        self, now: datetime
    ) -> tuple[list[Candidate], list[Blocked], Cluster, dict[tuple[str, str], int]] | None:
        ready = self._pools.ready()
        claims = self._state.claims()
        nodes = {ObjectMeta.of(n).name: n for n in self._state.nodes.store.values()}
        try:
            pdbs, _ = await self._api.list(PDBS)
        except _ERRORS as e:
            log.warning("cannot list PodDisruptionBudgets, not disrupting: %s", e)
            return None
        policies = {p.name: PoolPolicy.of(obj) for p, obj in ready}
        pods_by_node = self._state.pods_by_node()
        candidates, blocked = find_candidates(
            claims=claims,
            nodes=nodes,
            pods_by_node=pods_by_node,
            pdbs=pdbs,
            policies=policies,
            pools={p.name: p for p, _ in ready},
            nodeclass_hashes={
                p.name: nodeclass_hash(self._state.nodeclass(nodeclass_name(obj)))
                for p, obj in ready
            },
            nominated=self._nominated(claims, nodes),
            now=now,
        )
        settling = frozenset(c.node_name for c in candidates if not c.consolidatable) | frozenset(
            name
            for name, claim in claims.items()
            if claim.pool in policies
            and claim.node_name
            and not consolidatable(claim, policies[claim.pool], now)
        )
        cluster = Cluster(
            views=cluster_views(self._state, pool=self._pools.pool, catalog=self._catalog),
            nodepools=[p for p, _ in ready],
            catalog=self._catalog,
            daemonsets=daemonset_pods(self._state),
            settling=settling,
        )
        return candidates, blocked, cluster, _room(claims, nodes, policies, now)

    def _nominated(
        self,
        claims: Mapping[str, NodeClaimView],
        nodes: Mapping[str, JSON],
    ) -> dict[str, str]:
        """Replacements whose pods may still be on their way: while the nodes they replace
        exist, and for the nomination window after. A pod left bound to a node already gone
        is an orphan the pod GC deletes, not one on its way (after a scale to 0, none comes)."""
        out = {}
        now = time.monotonic()
        names = {c.node_name for c in claims.values()}
        for name, claim in claims.items():
            replaces = claim.meta.annotations.get(REPLACES_ANNOTATION)
            if not replaces:
                continue
            old = [n for n in replaces.split(",") if n]
            if any(n in nodes or n in names for n in old):
                self._moved.pop(name, None)
                out[name] = f"replacement for {', '.join(old)}: their pods are still moving"
                continue
            since = self._moved.setdefault(name, now)
            if now - since < self._settings.nomination_window:
                out[name] = f"replacement for {', '.join(old)}: nominated for their pods"
        return out

    def _revalidate(
        self,
        command: Command,
        snapshot: tuple[list[Candidate], list[Blocked], Cluster, dict[tuple[str, str], int]],
    ) -> Command | None:
        candidates, _, cluster, room = snapshot
        by_name = {c.name: c for c in candidates}
        fresh = [by_name.get(c.name) for c in command.candidates]
        chosen = [c for c in fresh if c is not None]
        if len(chosen) != len(fresh):
            return None
        need: dict[tuple[str, str], int] = {}
        for c in chosen:
            need[(c.pool, command.reason)] = need.get((c.pool, command.reason), 0) + 1
        if any(room.get(k, 0) < n for k, n in need.items()):
            return None
        again: Command | methods.NoCommand | None
        if command.method == methods.EMPTINESS:
            ok = all(c.consolidatable and not c.pods for c in chosen)
            again = (
                Command(command.method, command.reason, tuple(chosen), savings=command.savings)
                if ok
                else None
            )
        elif command.method == methods.DRIFT:
            again, _ = methods.drift(chosen, room, cluster)
        else:
            if not all(c.consolidatable for c in chosen):
                return None
            again = methods.consolidation(cluster, chosen, command.method)
        if not isinstance(again, Command) or again.key() != command.key():
            return None
        return again

    # -- acting ----------------------------------------------------------------------------

    async def _execute(self, command: Command) -> None:
        for c in command.candidates:
            await self._event(c, "Normal", "Disrupting", command.describe())
        try:
            made = await self.orchestrator.execute(command)
        except CommandAbandonedError as e:
            metrics.DISRUPTION_COMMANDS.labels(command.method, "abandoned").inc()
            log.warning("disruption: %s abandoned: %s", command.describe(), e)
            for c in command.candidates:
                await self._event(c, "Warning", "DisruptionAbandoned", str(e))
            return
        metrics.DISRUPTION_COMMANDS.labels(command.method, "executed").inc()
        metrics.DISRUPTION_SAVINGS.inc(max(command.savings, 0.0))
        for c in command.candidates:
            metrics.NODES_DISRUPTED.labels(c.pool, command.reason).inc()
        log.info(
            "disruption: %s done (replacements: %s)", command.describe(), ", ".join(made) or "none"
        )

    async def _expire(
        self,
        claims: Mapping[str, NodeClaimView],
        policies: Mapping[str, tuple[PoolPolicy, JSON]],
        now: datetime,
    ) -> None:
        for name, claim in claims.items():
            if claim.meta.deleting or claim.pool is None or claim.pool not in policies:
                continue
            policy, _ = policies[claim.pool]
            limit = policy.expire_after
            if claim.expire_after:
                with contextlib.suppress(InvalidFieldError):
                    limit = parse_duration(claim.expire_after, field="spec.expireAfter", never=True)
            if limit is None or not claim.meta.creation_timestamp:
                continue
            age = (now - parse_rfc3339(claim.meta.creation_timestamp)).total_seconds()
            if age < limit:
                continue
            message = f"expired: {age:.0f} s old, expireAfter is {limit:g} s"
            log.info("NodeClaim %s %s; deleting", name, message)
            await self._claim_event(claim.raw, "Normal", "Expired", message)
            try:
                self._state.note(await self._api.delete(NODECLAIMS, name))
            except _ERRORS as e:
                log.warning("NodeClaim %s: expiry delete failed: %s", name, e)
                continue
            metrics.NODES_DISRUPTED.labels(claim.pool or "", "Expired").inc()

    # -- status ----------------------------------------------------------------------------

    async def _track_pods(self, claims: Mapping[str, NodeClaimView]) -> None:
        """Bump ``status.lastPodEventTime`` of each claim whose node a pod was bound to or left
        since the last pass (the pod informer notes each one, however short-lived the pod)."""
        moved = self._state.take_pod_moves() | self._unrecorded
        self._unrecorded = set()
        if not moved:
            return
        now = format_rfc3339(self._clock.now())
        by_node = {c.node_name: c for c in claims.values() if c.node_name}
        for node in sorted(moved):
            claim = by_node.get(node)
            if claim is None:
                # A pod may land before the claim's status names its node: keep the event
                # while the Node exists (nodes that are not ours just stay in the set).
                if ("", node) in self._state.nodes.store:
                    self._unrecorded.add(node)
                continue
            if claim.meta.deleting:
                continue
            try:
                self._state.note(
                    await self._api.patch_status(
                        NODECLAIMS, claim.name, {"status": {LAST_POD_EVENT: now}}
                    )
                )
            except _ERRORS as e:
                log.info("NodeClaim %s: lastPodEventTime not written: %s", claim.name, e)
                self._unrecorded.add(node)

    async def _conditions(self, candidates: list[Candidate]) -> None:
        for c in candidates:
            wanted = {
                "Consolidatable": (
                    c.consolidatable,
                    "Consolidatable" if c.consolidatable else "Settling",
                ),
                "Drifted": (c.drifted is not None, (c.drifted or "NotDrifted").split(":")[0]),
            }
            current = c.claim.conditions
            if all(
                (current.get(k) is not None and current[k].true == v and current[k].reason == r)
                or (k == "Drifted" and not v and k not in current)
                for k, (v, r) in wanted.items()
            ):
                continue
            changes = [
                (kind, status, reason, c.drifted or "" if kind == "Drifted" else "")
                for kind, (status, reason) in wanted.items()
            ]
            try:
                await patch_claim_status(self._api, self._state, c.claim, {}, *changes)
            except _ERRORS as e:
                log.debug("NodeClaim %s: conditions not written (%s); next pass", c.name, e)

    async def _report_blocked(
        self,
        blocked: list[Blocked],
        why: Mapping[str, str],
        candidates: list[Candidate],
        room: Mapping[tuple[str, str], int],
    ) -> None:
        claims = self._state.claims()
        for b in blocked:
            claim = claims.get(b.claim)
            if claim is not None:
                await self._blocked(claim.raw, b.node, b.message)
        for c in candidates:
            message = why.get(c.name) or methods.budget_blocks(c, room)
            if message is not None:
                await self._blocked(c.claim.raw, c.node_name, message)

    async def _blocked(self, claim: JSON, node_name: str, message: str) -> None:
        node = self._state.nodes.store.get(("", node_name))
        await disruption_blocked(self._blocked_events, claim, node, message, type_="Normal")

    async def _event(self, c: Candidate, type_: str, reason: str, message: str) -> None:
        await self._claim_event(c.claim.raw, type_, reason, message)
        await record_event(
            self._api,
            node_object(c.node),
            type_=type_,
            reason=reason,
            message=message,
            component=COMPONENT,
        )

    async def _claim_event(self, claim: JSON, type_: str, reason: str, message: str) -> None:
        await claim_event(self._api, claim, type_, reason, message)


def _disrupting(claim: NodeClaimView, node: Mapping[str, object] | None) -> bool:
    if claim.meta.deleting or (
        bool(claim.meta.annotations.get(COMMAND_ANNOTATION))
        and REPLACES_ANNOTATION not in claim.meta.annotations
    ):
        return True
    if node is None:
        return False
    spec = node.get("spec") or {}
    taints = spec.get("taints") if isinstance(spec, dict) else None
    return any(t.get("key") == DISRUPTED_TAINT for t in taints or [])


def _room(
    claims: Mapping[str, NodeClaimView],
    nodes: Mapping[str, JSON],
    policies: Mapping[str, PoolPolicy],
    now: datetime,
) -> dict[tuple[str, str], int]:
    total: dict[str, int] = {}
    busy: dict[str, int] = {}
    for claim in claims.values():
        pool = claim.pool
        if pool is None or pool not in policies:
            continue
        node = nodes.get(claim.node_name) if claim.node_name else None
        if claim.is_true("Initialized") or claim.meta.deleting:
            total[pool] = total.get(pool, 0) + 1
        if _disrupting(claim, node) or (claim.is_true("Initialized") and node is None):
            busy[pool] = busy.get(pool, 0) + 1
    return {
        (pool, reason): allowed(
            policy.budgets,
            reason=reason,
            total=total.get(pool, 0),
            disrupting=busy.get(pool, 0),
            now=now,
        )
        for pool, policy in policies.items()
        for reason in REASONS
    }


def node_states(
    claims: Mapping[str, NodeClaimView], nodes: Mapping[str, JSON]
) -> dict[str, dict[str, int]]:
    """Per pool: its NodeClaims by lifecycle state (``launching`` to ``deleting``, each in
    one), and of those how many are ``consolidatable`` and ``drifted`` (those conditions) and
    how many ``disrupting`` (a command holds them, or their node has the disrupted taint)."""
    out: dict[str, dict[str, int]] = {}
    for claim in claims.values():
        if claim.pool is None:
            continue
        counts = out.setdefault(claim.pool, dict.fromkeys(NODE_STATES, 0))
        counts[_LIFECYCLE[phase(claim)]] += 1
        for kind in ("Consolidatable", "Drifted"):
            if claim.is_true(kind):
                counts[kind.lower()] += 1
        if _disrupting(claim, nodes.get(claim.node_name) if claim.node_name else None):
            counts["disrupting"] += 1
    return out


_LIFECYCLE = {
    "Launching": "launching",
    "Launched": "launched",
    "Registered": "registered",
    "Initialized": "initialized",
    "Terminating": "deleting",
}
