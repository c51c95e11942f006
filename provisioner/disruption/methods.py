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
- ``single_node``: the first valid single candidate in the same order;
- ``rebalance`` (Updraft's own, tried when Karpenter's methods find nothing): a few
  candidates of one pool replaced by the new NodeClaims a fresh provisioning of their pods
  would launch, when those cost at least ``REBALANCE_MIN_SAVING`` less at worst-case launch
  prices (and number at most ``REBALANCE_GROWTH`` times the nodes they replace). Karpenter's
  methods only ever swap nodes for one node, so a fleet can settle where every node is full on
  one resource (CPU-full general-purpose nodes with idle memory) several percent over what a
  fresh packing of the same pods costs: no node can shrink alone and no prefix fits one new
  node, but two such nodes' pods fit a compute node and a smaller general-purpose one. Groups
  are windows of the candidates sorted by their pods' memory per CPU (similar shapes pack
  together into the type that suits them), two to ``REBALANCE_MAX`` nodes within the pool's
  Underutilized budget, ranked by what they could save by a fractional packing (the cheapest
  cover of their pods' CPU and memory by the pool's types, a lower bound; a group whose cover
  takes more nodes than the growth allows is left out, as a fresh packing would launch that
  many, as on a catalog of burstable types holding three pods each); the best
  ``REBALANCE_TRIES`` are simulated and the first valid one wins. Every command lowers the
  fleet's $/h, so the methods still reach a fixed point.

``budget_blocks`` tells why a candidate no method may consider now is held by its budgets.

A consolidation is valid when, with the candidates removed and their pods pending, every pod
fits, none onto a node not Initialized yet, and (rebalance aside, see above) at most one new
NodeClaim is needed
(single-node consolidation asks the simulation for one claim holding all of a node's free pods
rather than several cheaper ones: a node is swapped for one node): none means DELETE, one
means REPLACE if an option's worst-case launch price costs strictly less than the candidates
together (its options are cut to the types that do). Nodes still inside consolidateAfter
(``settling``) take no pods. A drift command must not move pods onto a node not Initialized
yet either. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import math
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
    "REBALANCE",
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
    "rebalance",
    "single_node",
    "worst_case_price",
]

EMPTINESS = "emptiness"
DRIFT = "drift"
MULTI_NODE = "multi-node consolidation"
SINGLE_NODE = "single-node consolidation"
REBALANCE = "rebalance"
REBALANCE_MAX = 6
"""The most nodes one rebalance replaces (fewer where the budget leaves less room)."""
REBALANCE_GROWTH = 2
"""A rebalance launches at most this many nodes per node it replaces: a fresh packing of two
nodes' pods may be three smaller, cheaper nodes, never a spray of tiny ones."""
REBALANCE_TRIES = 6
"""Groups a pass simulates: the rest of the ranking waits for the next pass."""
REBALANCE_MIN_SAVING = 0.02
"""The share of its nodes' price a rebalance must save: it moves every pod of several nodes,
so a saving within the noise of spot prices is not worth the churn."""
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
    price = sum(c.price for c in candidates)
    if method == REBALANCE and result.new_claims:
        return _rebalanced(candidates, result.new_claims, price)
    if len(result.new_claims) > 1:
        return NoCommand(f"its pods would need {len(result.new_claims)} new nodes")
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


def _rebalanced(
    candidates: Sequence[Candidate], plans: Sequence[NodeClaimPlan], price: float
) -> Command | NoCommand:
    """A rebalance of ``candidates`` onto ``plans`` (at most ``REBALANCE_GROWTH`` per
    candidate), each plan's options cut to the types that keep the worst case of them all
    ``REBALANCE_MIN_SAVING`` under ``price``."""
    if len(plans) > len(candidates) * REBALANCE_GROWTH:
        return NoCommand(f"its pods would need {len(plans)} new nodes, more than it has")
    worst = []
    for plan in plans:
        prices = [
            (w, t)
            for t in plan.instance_types
            if (w := worst_case_price(t, plan.requirements)) is not None
        ]
        if not prices:
            return NoCommand(f"no type of {plan.name} has an offering to launch")
        prices.sort(key=lambda pair: pair[0])
        worst.append(prices)
    bound = price * (1 - REBALANCE_MIN_SAVING)
    floor = sum(prices[0][0] for prices in worst)
    if floor > bound:
        return NoCommand(
            f"fresh nodes for its pods would cost ${floor:.4g}/h, not "
            f"{REBALANCE_MIN_SAVING:.0%} less than ${price:.4g}/h"
        )
    slack = (bound - floor) / len(plans)
    cut = tuple(
        dataclasses.replace(
            plan,
            instance_types=tuple(t for w, t in prices if w <= prices[0][0] + slack),
            price=prices[0][0],
        )
        for plan, prices in zip(plans, worst, strict=True)
    )
    return Command(REBALANCE, UNDERUTILIZED, tuple(candidates), cut, savings=price - floor)


def _cover(
    points: Sequence[tuple[float, float, float]], cpu: float, mem: float
) -> tuple[float, float]:
    """The fractional lower bound on covering ``cpu`` and ``mem`` with ``points`` (each a
    type's (cpu, memory, price)): the cheapest single type, or mix of two, scaled freely; as
    (USD/h, how many nodes of those types that is)."""
    best = (math.inf, 0.0)
    for c, m, p in points:
        share = max(cpu / c, mem / m)
        best = min(best, (p * share, share))
    for i, (c1, m1, p1) in enumerate(points):
        for c2, m2, p2 in points[i + 1 :]:
            det = c1 * m2 - c2 * m1
            if det == 0:
                continue
            x1 = (cpu * m2 - c2 * mem) / det
            x2 = (c1 * mem - cpu * m1) / det
            if x1 >= 0 and x2 >= 0:
                best = min(best, (x1 * p1 + x2 * p2, x1 + x2))
    return best


def _unit_points(pool: NodePool, catalog: Catalog) -> list[tuple[float, float, float]]:
    """(cpu, memory, price) of ``pool``'s types at their cheapest offering, cut to those no
    other type beats on both price per CPU and price per byte."""
    reqs = pool.template_requirements()
    units = []
    for itype in catalog.instance_types(pool.kubelet):
        alloc = itype.allocatable
        if alloc.cpu <= 0 or alloc.memory <= 0 or itype.requirements.conflict(reqs) is not None:
            continue
        offering = itype.cheapest(reqs)
        if offering is not None:
            units.append((alloc.cpu, alloc.memory, offering.price))
    units.sort(key=lambda u: u[2] / u[0])
    kept: list[tuple[float, float, float]] = []
    for u in units:  # cheapest per CPU first: keep a type only if it is cheaper per byte
        if not kept or u[2] / u[1] < kept[-1][2] / kept[-1][1]:
            kept.append(u)
    return kept


def _shape(c: Candidate) -> float:
    cpu = sum(p.requests.cpu for p in c.pods)
    return sum(p.requests.memory for p in c.pods) / cpu if cpu else float("inf")


def rebalance(candidates: Sequence[Candidate], room: Room, cluster: Cluster) -> Command | None:
    """The first valid of the ``REBALANCE_TRIES`` groups a fractional packing says save most
    (see the module docstring)."""
    pools = {p.name: p for p in cluster.nodepools}
    ranked: list[tuple[float, tuple[str, ...], list[Candidate]]] = []
    by_pool: dict[str, list[Candidate]] = {}
    for c in candidates:
        if c.consolidatable and c.policy.consolidates_underutilized and c.pods:
            by_pool.setdefault(c.pool, []).append(c)
    for name, members in sorted(by_pool.items()):
        most = min(REBALANCE_MAX, room.get((name, UNDERUTILIZED), 0), len(members))
        pool = pools.get(name)
        if most < 2 or pool is None:
            continue
        points = _unit_points(pool, cluster.catalog)
        if not points:
            continue
        members.sort(key=lambda c: (_shape(c), c.name))
        cpu = [float(sum(p.requests.cpu for p in c.pods)) for c in members]
        mem = [float(sum(p.requests.memory for p in c.pods)) for c in members]
        for size in range(2, most + 1):
            for i in range(len(members) - size + 1):
                group = members[i : i + size]
                price = sum(c.price for c in group)
                bound, nodes = _cover(points, sum(cpu[i : i + size]), sum(mem[i : i + size]))
                # More nodes than the growth allows: a fresh packing would launch those.
                if bound < price * (1 - REBALANCE_MIN_SAVING) and nodes <= REBALANCE_GROWTH * size:
                    ranked.append((bound - price, tuple(c.name for c in group), group))
    ranked.sort(key=lambda r: (r[0], r[1]))
    for _, _, group in ranked[:REBALANCE_TRIES]:
        found = consolidation(cluster, group, REBALANCE)
        if isinstance(found, Command):
            return found
    return None


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
    if command is None:
        command = rebalance(candidates, room, cluster)
    return command, {**why, **more}
