"""The disruption methods: which nodes to take away, and what (if anything) replaces them.

Owns ``Command`` (candidates, replacements, reason, method, savings), the ``Cluster`` a method
asks the one simulation (``provisioner.scheduling.simulate``) about, and the methods, tried in
this order by ``decide`` (the first that yields a command wins):

- ``emptiness``: every consolidatable candidate without a pod to move, within each pool's
  ``Empty`` budget, in one command;
- ``drift``: one drifted candidate, empty ones first then the oldest, replaced by what the
  simulation needs for its pods (launched before it goes);
- ``multi_node``: consolidatable candidates sorted by savings ratio (price / (1 + eviction
  cost), Karpenter's order), budget filtered, the first 100; a binary search for the longest
  prefix (at least 2) that is valid;
- ``single_node``: the first valid single candidate in the same order.

``budget_blocks`` tells why a candidate no method may consider now is held by its budgets.

A consolidation is valid when, with the candidates removed and their pods pending, every pod
fits, none onto a node not Initialized yet, and at most one new NodeClaim is needed
(single-node consolidation asks the simulation for one claim holding all of a node's free pods
rather than several cheaper ones: a node is swapped for one node): none means DELETE, one
means REPLACE if an option's worst-case launch price costs strictly less than the candidates
together (its options are cut to the types that do). Nodes still inside consolidateAfter
(``settling``) take no pods. A drift command must not move pods onto a node not Initialized
yet either. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from provisioner.catalog import Catalog, InstanceType
from provisioner.disruption.budgets import DRIFTED, EMPTY, UNDERUTILIZED
from provisioner.disruption.candidates import Candidate
from provisioner.labels import CAPACITY_TYPE, ZONE
from provisioner.model import NodePool, NodeView, Pod, Taint
from provisioner.requirements import Requirements
from provisioner.scheduling import NodeClaimPlan, SimulationResult, simulate

__all__ = [
    "DRIFT",
    "EMPTINESS",
    "MULTI_NODE",
    "SINGLE_NODE",
    "Cluster",
    "Command",
    "NoCommand",
    "budget_blocks",
    "consolidation",
    "decide",
    "drift",
    "emptiness",
    "moves",
    "multi_node",
    "single_node",
    "worst_case_price",
]

EMPTINESS = "emptiness"
DRIFT = "drift"
MULTI_NODE = "multi-node consolidation"
SINGLE_NODE = "single-node consolidation"
MULTI_NODE_MAX = 100
"""Karpenter's bound on one multi-node command: the binary search stays ~7 simulations."""
SETTLING_TAINT = Taint("updraft.io/settling")
"""Marks (in the simulation only) a node still inside consolidateAfter: no destination."""

Room = Mapping[tuple[str, str], int]
"""(pool, reason) -> how many more nodes the budgets let go."""


@dataclass(frozen=True, eq=False)
class Command:
    method: str
    reason: str
    candidates: tuple[Candidate, ...]
    replacements: tuple[NodeClaimPlan, ...] = ()
    savings: float = 0.0
    """USD/h: the candidates' prices less the replacements' (negative for some drift)."""

    @property
    def decision(self) -> str:
        return "replace" if self.replacements else "delete"

    def key(self) -> tuple[str, tuple[str, ...], int]:
        """What must be the same for a re-validated command to be 'the same command'."""
        return self.method, tuple(sorted(c.name for c in self.candidates)), len(self.replacements)

    def describe(self) -> str:
        names = ", ".join(c.node_name for c in self.candidates)
        if not self.replacements:
            return f"{self.method}: delete {names}, saving ${self.savings:.4g}/h"
        types = ", ".join(r.instance_types[0].name for r in self.replacements)
        return f"{self.method}: replace {names} with {types}, saving ${self.savings:.4g}/h"


@dataclass(frozen=True)
class Cluster:
    """The simulation's inputs for the cluster as it is (see ``scheduling``)."""

    views: Sequence[NodeView]
    nodepools: Sequence[NodePool]
    catalog: Catalog
    daemonsets: Sequence[Pod] = ()
    settling: frozenset[str] = frozenset()
    """Node names still inside their consolidateAfter."""

    def booting(self, result: SimulationResult) -> tuple[Pod, str] | None:
        """The first pod ``result`` moves onto a node (or in-flight claim) not Initialized
        yet, with its name. No command may count on one: an evicted pod would wait Pending for
        a node that may never come up (Karpenter's uninitialized-node check). A replacement
        a restarted controller rolled back is one until it is up."""
        booting = {v.name for v in self.views if v.in_flight or not v.initialized}
        return next(((pod, node) for pod, node in result.placed if node in booting), None)

    def without(
        self, candidates: Sequence[Candidate], *, settle: bool, one_claim: bool = False
    ) -> SimulationResult:
        """Where the candidates' pods would go with the candidates gone (``one_claim``: into
        one new claim where the simulation can, as a consolidation launches one at most)."""
        gone = {c.node_name for c in candidates} | {c.name for c in candidates}
        views = []
        for view in self.views:
            if view.name in gone:
                continue
            if settle and view.name in self.settling:
                view = dataclasses.replace(view, taints=(*view.taints, SETTLING_TAINT))
            views.append(view)
        pods = [p for c in candidates for p in c.pods]
        return simulate(
            pods,
            nodepools=self.nodepools,
            catalog=self.catalog,
            nodes=views,
            daemonsets=self.daemonsets,
            one_claim=one_claim,
        )


def _within_budget(candidates: Sequence[Candidate], room: Room, reason: str) -> list[Candidate]:
    left = dict(room)
    out = []
    for c in candidates:
        if left.get((c.pool, reason), 0) > 0:
            left[(c.pool, reason)] -= 1
            out.append(c)
    return out


def _wanted(c: Candidate) -> tuple[str, ...]:
    """The budget reasons under which some method would consider ``c`` now: Empty for an
    empty consolidatable node, Drifted for a drifted one, Underutilized for any consolidatable
    node of a pool that consolidates underutilized nodes (an empty one included)."""
    out = []
    if c.consolidatable and not c.pods:
        out.append(EMPTY)
    if c.drifted:
        out.append(DRIFTED)
    if c.consolidatable and c.policy.consolidates_underutilized:
        out.append(UNDERUTILIZED)
    return tuple(out)


def budget_blocks(c: Candidate, room: Room) -> str | None:
    """Why the budgets alone keep every method from considering ``c`` now, or None (no method
    wants it, or one still has room for it)."""
    wanted = _wanted(c)
    if not wanted or any(room.get((c.pool, r), 0) > 0 for r in wanted):
        return None
    return f"the budgets of NodePool {c.pool} allow no more {' or '.join(wanted)} disruptions now"


def emptiness(candidates: Sequence[Candidate], room: Room) -> Command | None:
    empty = [c for c in candidates if c.consolidatable and not c.pods]
    chosen = _within_budget(empty, room, EMPTY)
    if not chosen:
        return None
    return Command(EMPTINESS, EMPTY, tuple(chosen), savings=sum(c.price for c in chosen))


def drift(
    candidates: Sequence[Candidate], room: Room, cluster: Cluster
) -> tuple[Command | None, dict[str, str]]:
    """The first drifted candidate whose pods can all be placed; why others could not."""
    drifted = sorted(
        (c for c in candidates if c.drifted), key=lambda c: (bool(c.pods), c.created, c.name)
    )
    why: dict[str, str] = {}
    for c in _within_budget(drifted, room, DRIFTED):
        result = _ask(cluster, [c], DRIFT)
        if result.unschedulable:
            pod, reason = result.unschedulable[0]
            why[c.name] = f"drifted, but pod {pod.key} would not fit anywhere: {reason}"
            continue
        booting = cluster.booting(result)
        if booting is not None:
            pod, node = booting
            why[c.name] = f"drifted, but pod {pod.key} would move to {node}, not initialized yet"
            continue
        command = Command(
            DRIFT, DRIFTED, (c,), tuple(result.new_claims), savings=c.price - result.price
        )
        return command, why
    return None, why


@dataclass(frozen=True)
class NoCommand:
    """Why removing some candidates together gives no command."""

    why: str

    def __str__(self) -> str:
        return self.why


_LAUNCH_ORDER = ("reserved", "spot", "on-demand")
"""The capacity type a claim launches with when its requirements admit several."""


def worst_case_price(itype: InstanceType, requirements: Requirements) -> float | None:
    """What ``itype`` may cost once launched under ``requirements``: the dearest available
    offering of the capacity type it would launch with (reserved, else spot, else on-demand).
    A replacement must be cheaper than its candidates even at that price."""
    zone = requirements.find(ZONE)
    ctype = requirements.find(CAPACITY_TYPE)
    admitted = [
        o
        for o in itype.offerings
        if o.available
        and (zone is None or zone.has(o.zone))
        and (ctype is None or ctype.has(o.capacity_type))
    ]
    for kind in _LAUNCH_ORDER:
        prices = [o.price for o in admitted if o.capacity_type == kind]
        if prices:
            return max(prices)
    return max((o.price for o in admitted), default=None)


def _ask(cluster: Cluster, candidates: Sequence[Candidate], method: str) -> SimulationResult:
    """The simulation a method runs for ``candidates``. Consolidation keeps settling nodes
    out. A single node whose pods the simulation would spread over several cheaper new nodes
    can still be swapped for one holding them all; several nodes go together only onto what
    the simulation packs them into (Karpenter's longest prefix with one new node)."""
    if method == DRIFT:
        return cluster.without(candidates, settle=False)
    return cluster.without(candidates, settle=True, one_claim=method == SINGLE_NODE)


def moves(cluster: Cluster, command: Command) -> SimulationResult:
    """Where ``command``'s pods go: the simulation its method ran, run again (it is
    deterministic), so a caller can carry the command out as decided."""
    return _ask(cluster, command.candidates, command.method)


def consolidation(
    cluster: Cluster, candidates: Sequence[Candidate], method: str
) -> Command | NoCommand:
    """The command removing ``candidates`` together, or why there is none."""
    result = _ask(cluster, candidates, method)
    if result.unschedulable:
        pod, reason = result.unschedulable[0]
        return NoCommand(f"pod {pod.key} would not fit anywhere: {reason}")
    booting = cluster.booting(result)
    if booting is not None:
        pod, node = booting
        return NoCommand(f"pod {pod.key} would move to {node}, not initialized yet")
    if len(result.new_claims) > 1:
        return NoCommand(f"its pods would need {len(result.new_claims)} new nodes")
    price = sum(c.price for c in candidates)
    if not result.new_claims:
        return Command(method, UNDERUTILIZED, tuple(candidates), savings=price)
    plan = result.new_claims[0]
    cheaper = []
    for itype in plan.instance_types:
        worst = worst_case_price(itype, plan.requirements)
        if worst is not None and worst < price:
            cheaper.append((worst, itype))
    if not cheaper:
        return NoCommand(f"can't replace with a cheaper node than ${price:.4g}/h")
    cheaper.sort(key=lambda pair: pair[0])
    plan = dataclasses.replace(
        plan, instance_types=tuple(t for _, t in cheaper), price=cheaper[0][0]
    )
    return Command(method, UNDERUTILIZED, tuple(candidates), (plan,), savings=price - cheaper[0][0])


def _ordered(candidates: Sequence[Candidate], room: Room) -> list[Candidate]:
    """Karpenter's order: highest savings ratio first (price / (1 + eviction cost))."""
    eligible = [c for c in candidates if c.consolidatable and c.policy.consolidates_underutilized]
    eligible.sort(key=lambda c: (-c.savings_ratio, c.name))
    return _within_budget(eligible, room, UNDERUTILIZED)


def multi_node(candidates: Sequence[Candidate], room: Room, cluster: Cluster) -> Command | None:
    """The longest valid prefix (at least 2) of the first 100 candidates in Karpenter's
    order, found by Karpenter's binary search on the prefix length."""
    ordered = _ordered(candidates, room)[:MULTI_NODE_MAX]
    best: Command | None = None
    lo, hi = 2, len(ordered)
    while lo <= hi:
        mid = (lo + hi) // 2
        found = consolidation(cluster, ordered[:mid], MULTI_NODE)
        if isinstance(found, Command):
            best, lo = found, mid + 1
        else:
            hi = mid - 1
    return best


def single_node(
    candidates: Sequence[Candidate], room: Room, cluster: Cluster
) -> tuple[Command | None, dict[str, str]]:
    """The first candidate that can go alone; why each one tried before it could not."""
    why: dict[str, str] = {}
    for c in _ordered(candidates, room):
        found = consolidation(cluster, [c], SINGLE_NODE)
        if isinstance(found, Command):
            return found, why
        why[c.name] = str(found)
    return None, why


def decide(
    candidates: Sequence[Candidate], room: Room, cluster: Cluster
) -> tuple[Command | None, dict[str, str]]:
    """One disruption decision: the methods in order, the first command wins; why the
    candidates tried (drift, single-node) could not go."""
    command = emptiness(candidates, room)
    if command is not None:
        return command, {}
    command, why = drift(candidates, room, cluster)
    if command is not None:
        return command, why
    command = multi_node(candidates, room, cluster)
    if command is not None:
        return command, why
    command, more = single_node(candidates, room, cluster)
    return command, {**why, **more}
