"""The disruption methods: which nodes to take away, and what (if anything) replaces them.

Owns ``Command`` (candidates, replacements, reason, method, savings), the ``Cluster`` a method
asks the one simulation (``provisioner.scheduling.simulate``) about, and the methods, tried in
this order by the controller (the first that yields a command wins):

- ``emptiness``: every consolidatable candidate without a pod to move, within each pool's
  ``Empty`` budget, in one command;
- ``drift``: one drifted candidate, empty ones first then the oldest, replaced by what the
  simulation needs for its pods (launched before it goes);
- ``multi_node``: consolidatable candidates sorted by savings ratio (price / (1 + eviction
  cost), Karpenter's order), budget filtered, the first 100; a binary search for the longest
  prefix (at least 2) that is valid; if none is, the same search with the fewest pods first;
- ``single_node``: the first valid single candidate in the same order.

A consolidation is valid when, with the candidates removed and their pods pending, every pod
fits and at most one new NodeClaim is needed: none means DELETE, one means REPLACE if an
option's worst-case launch price costs strictly less than the candidates together (its options
are cut to the types that do). Nodes still inside consolidateAfter (``settling``) take no
pods. Pure: no I/O.
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
from provisioner.resources import Resources
from provisioner.scheduling import NodeClaimPlan, SimulationResult, simulate

__all__ = [
    "DRIFT",
    "EMPTINESS",
    "MULTI_NODE",
    "SINGLE_NODE",
    "Cluster",
    "Command",
    "NoCommand",
    "consolidation",
    "drift",
    "emptiness",
    "multi_node",
    "single_node",
    "worst_case_price",
]

EMPTINESS = "emptiness"
DRIFT = "drift"
MULTI_NODE = "multi-node consolidation"
SINGLE_NODE = "single-node consolidation"
MULTI_NODE_MAX = 100
SCAN_MAX = 20
"""The longest prefix tried one by one when the binary search finds nothing: ~20 more
simulations at most, so a pass stays well under Karpenter's 1-minute multi-node timeout."""
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

    def without(self, candidates: Sequence[Candidate], *, settle: bool) -> SimulationResult:
        """Where the candidates' pods would go with the candidates gone."""
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
            nodepools=[self._one_node_limits(pool, views) for pool in self.nodepools],
            catalog=self.catalog,
            nodes=views,
            daemonsets=self.daemonsets,
        )

    def _one_node_limits(self, pool: NodePool, views: Sequence[NodeView]) -> NodePool:
        """``pool`` without its limits when what they leave (``views`` counted) holds its
        largest instance type: a valid command adds at most one node, so such limits cannot
        bind, and the simulation packs best without any (it grows a claim only then)."""
        if pool.limits is None:
            return pool
        left = {name: pool.limits.get(name) for name in pool.limit_names}
        for view in views:
            if view.nodepool == pool.name:
                for name in left:
                    left[name] -= 1 if name == "nodes" else view.capacity.get(name)
        biggest: dict[str, int] = {}
        for itype in self.catalog.instance_types():
            if pool.requirements.conflict(itype.requirements) is not None:
                continue
            for name in left:
                want = 1 if name == "nodes" else itype.capacity.get(name)
                biggest[name] = max(biggest.get(name, 0), want)
        if all(left[name] >= biggest.get(name, 0) for name in left):
            return dataclasses.replace(pool, limits=None, limit_names=frozenset())
        return pool


def _within_budget(candidates: Sequence[Candidate], room: Room, reason: str) -> list[Candidate]:
    left = dict(room)
    out = []
    for c in candidates:
        if left.get((c.pool, reason), 0) > 0:
            left[(c.pool, reason)] -= 1
            out.append(c)
    return out


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
        result = cluster.without([c], settle=False)
        if result.unschedulable:
            pod, reason = result.unschedulable[0]
            why[c.name] = f"drifted, but pod {pod.key} would not fit anywhere: {reason}"
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
    too_small: bool = False
    """The pods fit on one new node, but that saves nothing (or two smaller ones are
    cheaper): more candidates might pay for one node (a longer prefix is worth trying);
    otherwise more candidates only make it worse."""

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


def consolidation(
    cluster: Cluster, candidates: Sequence[Candidate], method: str
) -> Command | NoCommand:
    """The command removing ``candidates`` together, or why there is none."""
    result = cluster.without(candidates, settle=True)
    if result.unschedulable:
        pod, reason = result.unschedulable[0]
        return NoCommand(f"pod {pod.key} would not fit anywhere: {reason}")
    if len(result.new_claims) > 1:
        # Split because two small nodes cost less than one that holds them all: adding
        # candidates may pay for the one (a longer prefix is worth trying); if no type holds
        # them all, adding candidates can only make it worse.
        total = sum((plan.requests for plan in result.new_claims), Resources())
        one_holds = any(
            total.fits(t.allocatable)
            for pool in cluster.nodepools
            if pool.name in {plan.nodepool for plan in result.new_claims}
            for t in cluster.catalog.instance_types()
            if pool.requirements.conflict(t.requirements) is None
        )
        return NoCommand(
            f"its pods would need {len(result.new_claims)} new nodes", too_small=one_holds
        )
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
        return NoCommand(f"can't replace with a cheaper node than ${price:.4g}/h", too_small=True)
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


def _longest_prefix(cluster: Cluster, ordered: Sequence[Candidate]) -> Command | None:
    """The longest valid prefix (at least 2) of ``ordered``: Karpenter's binary search; if it
    finds none, the prefixes one by one from 2 (at most ``SCAN_MAX``) while each failure says
    more candidates might pay for one node. Validity is not monotone in the length (two 1-pod
    nodes may not pay for the one that three of them do), so the search alone misses some."""
    best: Command | None = None
    lo, hi = 2, len(ordered)
    while lo <= hi:
        mid = (lo + hi) // 2
        found = consolidation(cluster, ordered[:mid], MULTI_NODE)
        if isinstance(found, Command):
            best, lo = found, mid + 1
        else:
            hi = mid - 1
    if best is not None:
        return best
    for length in range(2, min(len(ordered), SCAN_MAX) + 1):
        found = consolidation(cluster, ordered[:length], MULTI_NODE)
        if isinstance(found, Command):
            best = found
        elif not found.too_small:
            break
    return best


def multi_node(candidates: Sequence[Candidate], room: Room, cluster: Cluster) -> Command | None:
    """The longest valid prefix in Karpenter's order; failing that, in the order of fewest
    pods first: a few lightly loaded nodes are what merges onto one, and the savings ratio
    can lead with full nodes that merge with nothing (3 full m5.xlarge before 3 c5.large
    holding one pod each: no prefix of that order is valid)."""
    ordered = _ordered(candidates, room)[:MULTI_NODE_MAX]
    best = _longest_prefix(cluster, ordered)
    if best is None:
        light = sorted(ordered, key=lambda c: (len(c.pods), -c.savings_ratio, c.name))
        if light != ordered:
            best = _longest_prefix(cluster, light)
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
