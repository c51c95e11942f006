"""The scheduling simulation: pending pods in, placements and right-sized NodeClaims out.

Owns ``simulate`` and its result types. Given pending pods, NodePools, existing nodes and in-flight
NodeClaims (``NodeView``), daemonset pod templates and a ``Catalog``, it decides which pods go on
existing/in-flight nodes, which new NodeClaims to create (each with its pods, its combined
requirements and every compatible instance type, cheapest first) and which pods cannot be
scheduled, with a reason naming the constraint. It is pure: no clock, no I/O, no Kubernetes.

How a pass works

1. Queue: CPU request desc, memory desc, creation time, UID, namespace/name (deterministic).
2. Each pod is tried, per relaxation level (below) and per required nodeSelectorTerm (OR), on:
   a. existing and in-flight nodes (initialized first, then by name), first fit;
   b. NodeClaims opened earlier in this pass: among the first few with room per target type,
      the one left fullest and most balanced after placing the pod (Karpenter tries the
      emptiest first, which spreads rather than packs). Only claims whose target costs at
      most 10 % more per pod of this size than the best target for it qualify ("picky");
   c. before a new claim: a claim of this pass (up to ``_CHEAP_VISITS``, newest of each target
      type first) the pod can join, or grow into a bigger target for (pools without limits or
      minValues), for no more than the cheapest node holding the pod alone would cost, least
      added cost first. A claim launches as the cheapest type holding what it got, so what a
      pod costs there is the step to the cheapest type holding it too: often nothing, even when
      (b) found the claim's target too dear for pods of this size;
   d. a new NodeClaim from each NodePool in weight order (desc, then name), first success;
   e. if no pool can take it (limits, affinity to a pod already placed), any claim of (b)
      with room, picky or not.
   Filling (a) to (c) first is what keeps a burst from launching twice.
3. Pods that failed are retried in further passes while a pass makes progress (a pod may
   need an affinity target that is placed later in the queue).

Relaxation (fixed order, one step per level, until the pod fits or nothing is left): at level 0
every preferred pod (anti-)affinity term and ScheduleAnyway spread constraint is treated as
required, the heaviest preferred node-affinity term is required, and PreferNoSchedule taints
must be tolerated. Then, one at a time: drop the lightest preferred pod-affinity term; the
lightest preferred anti-affinity term; the heaviest preferred node-affinity term (the next
heaviest becomes required); a ScheduleAnyway spread constraint; finally tolerate
PreferNoSchedule taints (only when some pool or node has one).

Packing: a new NodeClaim is packed against one *target* instance type, chosen for the pod that
opens it as the type with the lowest price per pod of that pod's size (price over how many such
pods fit, at most the number still queued), among types that fit the pod plus daemonset overhead,
have an available offering the requirements admit, and stay inside the pool's limits. Types that
another type beats on price and every resource are never targets. After the pass each claim's
options shrink to every compatible type that fits what was packed, sorted by cheapest compatible
available offering; the launch takes the first, the provider falls back along the list.

Repacking (cost): when the pass is done, a pool's claims that hold only *free* pods (no node
requirements, host ports, tolerated PreferNoSchedule, topology or affinity terms of their own, and
matched by no topology group: moving them changes nothing but cost) are packed again node by node
(``repack``: value each pod by per-unit prices of cpu and memory, open a node for the largest pod
left, try the types cheapest per unit of value they could absorb, fill each largest-first then
smallest-first, shrink it to the cheapest type that holds what it got, keep the cheapest per unit
of value packed). The new claims replace the old ones only if they cost less in total. Skipped
for pools with limits or minValues (the pod-by-pod pass is what checks those) and when its work
estimate (claims x types tried x pods scanned per node) is over a budget, as for 20k pods on
burstable types holding one or two pods each (seconds of work for ~0.1 % measured). Claims mixing
free and constrained pods keep their packing.

Limits are never exceeded: opening a claim reserves its target's capacity (the largest option
the claim can end with, since options never exceed the target) from the pool's remaining
limits, which start from the limits minus the capacity of the pool's nodes and in-flight claims.

minValues: a claim only accepts a pod if the types that would still fit it keep at least
minValues distinct values for each such requirement (the Strict policy).

Topology (zone and hostname keys): see ``topology``. A claim whose pods carry a zone constraint
is pinned to one zone (the least-loaded allowed one for spread, else the first by name).
Hostname spread treats a new node's count as 0, so a new claim can always take one more pod.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from provisioner.catalog import Catalog, InstanceType
from provisioner.labels import CAPACITY_TYPE, HOSTNAME, WELL_KNOWN_LABELS, ZONE
from provisioner.model import (
    PREFER_NO_SCHEDULE,
    AffinityTerm,
    HostPort,
    NodePool,
    NodeView,
    Pod,
    SpreadConstraint,
    Taint,
    Toleration,
    untolerated,
)
from provisioner.requirements import Requirement, Requirements
from provisioner.resources import Resources
from provisioner.scheduling.repack import MISSES as REPACK_MISSES
from provisioner.scheduling.repack import WIDTH as REPACK_WIDTH
from provisioner.scheduling.repack import Box, Size, cover, unit_prices
from provisioner.scheduling.topology import GroupKind, TopologyGroup

__all__ = ["NodeClaimPlan", "SimulationResult", "simulate"]

_UNREGISTERED_TAINT = "karpenter.sh/unregistered"
_OK, _TRANSIENT, _PERMANENT = 0, 1, 2
_TOLERANCE = 0.10  # see _Solver._worth
_TAIL = 64
_NO_CAP = 1 << 30
_SHORTLIST = 8  # claims compared per pod in _Solver._try_bins
_CHEAP_VISITS = 64  # claims looked at per pod by _Solver._try_cheap
_RATIO_STEP = math.log(1.05)  # demand buckets 5 % wide for the target ranking cache
_REPACK_BUDGET = 4_000_000  # fill steps (estimated) a repack may take, see _Solver._repack


@dataclass(frozen=True, slots=True, eq=False)
class NodeClaimPlan:
    """A NodeClaim to create: its pods and every instance type that could host them."""

    name: str
    nodepool: str
    requirements: Requirements
    """Pool requirements and template labels, narrowed by the pods' requirements."""
    pods: tuple[Pod, ...]
    requests: Resources
    """Pod requests plus the daemonset overhead on the cheapest option; includes ``pods``."""
    instance_types: tuple[InstanceType, ...]
    """Cheapest compatible available offering first."""
    price: float
    """USD/h of the cheapest option's cheapest compatible available offering."""
    taints: tuple[Taint, ...] = ()
    startup_taints: tuple[Taint, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SimulationResult:
    placed: tuple[tuple[Pod, str], ...]
    """Pods placed on existing or in-flight nodes, with the node (or NodeClaim) name."""
    new_claims: tuple[NodeClaimPlan, ...]
    unschedulable: tuple[tuple[Pod, str], ...]
    """Pods no node or NodePool can take, with the reason."""

    @property
    def price(self) -> float:
        """USD/h of the new NodeClaims at their cheapest options."""
        return sum(c.price for c in self.new_claims)


# --- internal state -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One relaxation level of one pod with one required nodeSelectorTerm: what must hold."""

    requirements: Requirements
    tolerations: tuple[Toleration, ...]
    tolerate_prefer: bool
    affinity: tuple[AffinityTerm, ...]
    anti_affinity: tuple[AffinityTerm, ...]
    spread: tuple[SpreadConstraint, ...]
    host_ports: tuple[HostPort, ...]


class _Fit:
    """An instance type as seen from one pool: room left after that pool's daemonsets."""

    __slots__ = (
        "cap",
        "cpu",
        "eph",
        "ext",
        "mem",
        "overhead",
        "pod_price",
        "pods",
        "ports",
        "type",
    )

    def __init__(
        self,
        itype: InstanceType,
        overhead: Resources,
        ports: tuple[HostPort, ...],
        pool_price: float,
    ):
        room = itype.allocatable - overhead
        self.type = itype
        self.cpu, self.mem, self.pods, self.eph = (
            room.cpu,
            room.memory,
            room.pods,
            room.ephemeral_storage,
        )
        self.ext = dict(room.extended)
        self.overhead = overhead
        self.ports = ports
        self.cap = itype.capacity
        self.pod_price = pool_price
        """Cheapest offering the pool's own requirements admit (inf: none)."""


class _Pool:
    __slots__ = ("daemons", "fits", "index", "min_values", "pool", "remaining", "reqs", "types")

    def __init__(self, index: int, pool: NodePool, types: list[InstanceType]) -> None:
        self.index = index
        self.pool = pool
        self.reqs = pool.template_requirements()
        self.types = types
        self.fits: dict[str, _Fit] = {}
        self.daemons: list[Pod] = []
        self.remaining: dict[str, int] | None = None
        self.min_values = any(r.min_values for r in self.reqs.values())

    @property
    def growable(self) -> bool:
        """Whether a claim may move to a bigger target in the pass (no limits to reserve
        against, no minValues to keep)."""
        return self.remaining is None and not self.min_values


class _Bin:
    """An existing node, in-flight NodeClaim or NodeClaim opened in this pass."""

    __slots__ = (
        "closed",
        "cpu",
        "eph",
        "existing",
        "ext",
        "fit",
        "floor",
        "free",
        "labels",
        "mem",
        "name",
        "pod_ports",
        "pods",
        "pods_placed",
        "pool",
        "ports",
        "price",
        "reqs",
        "reserved",
        "serial",
        "taints",
        "used",
        "zones",
    )

    def __init__(self, name: str, serial: int) -> None:
        self.name = name
        self.serial = serial
        self.existing = True
        self.closed = False
        self.free = True
        """Every pod placed here so far is free to go on any claim of the pool (see _Shape)."""
        self.cpu = self.mem = self.pods = self.eph = 0
        self.ext: dict[str, int] = {}
        self.labels: Mapping[str, str] = {}
        self.taints: tuple[Taint, ...] = ()
        self.ports: list[HostPort] = []
        self.pool: _Pool | None = None
        self.reqs = Requirements()
        self.fit: _Fit | None = None
        self.floor: tuple[Resources, Requirements, list[tuple[_Fit, float]], int, float] | None
        self.floor = None
        """(used, reqs, frontier, position, USD/h) of the cheapest type holding ``used`` (see
        ``_Solver._step``), for the ``used`` and ``reqs`` it was computed for."""
        self.price = 0.0
        """USD/h of the target at its cheapest offering the requirements admit."""
        self.used = Resources()
        self.reserved: dict[str, int] = {}
        self.zones: tuple[str, ...] = ()
        """Zones the bin is or may be in (one for nodes and pinned claims)."""
        self.pods_placed: list[Pod] = []
        self.pod_ports: list[HostPort] = []
        """Host ports of pods placed in this pass (``ports`` adds daemonsets and bound pods)."""


class _Item:
    __slots__ = ("cpu", "cpu_rep", "eph", "ext", "mem", "mem_rep", "pod", "requests")

    def __init__(self, pod: Pod) -> None:
        self.pod = pod
        r = pod.requests
        self.cpu, self.mem, self.eph = r.cpu, r.memory, r.ephemeral_storage
        self.ext = dict(r.extended)
        self.requests = r + Resources(pods=1)
        # Sizes rounded up to 5 % buckets, so target rankings can be cached per bucket.
        self.cpu_rep = _bucket(self.cpu)
        self.mem_rep = _bucket(self.mem)


def _bucket(amount: int) -> float:
    return math.exp(math.ceil(math.log(max(amount, 1)) / _RATIO_STEP) * _RATIO_STEP)


class _Shape:
    """Pods with the same namespace, labels and attempt behave the same; work is cached here."""

    __slots__ = (
        "affinity",
        "anti",
        "attempt",
        "candidates",
        "dead",
        "eligible_zones",
        "free",
        "inverse",
        "labels",
        "lane_seen",
        "lanes",
        "matching",
        "namespace",
        "pool_cache",
        "spread",
        "zone_bound",
    )

    def __init__(self, namespace: str, labels: Mapping[str, str], attempt: _Attempt) -> None:
        self.namespace = namespace
        self.labels = labels
        self.attempt = attempt
        self.candidates: list[_Bin] = []
        """Existing and in-flight nodes this shape may still use."""
        self.lanes: dict[tuple[int, str], list[_Bin]] = {}
        """Claims of this pass by (pool, target type) this shape may still use."""
        self.lane_seen: dict[tuple[int, str], int] = {}
        self.dead: set[int] = set()
        """Serials of bins this shape can never use (compacted away now and then)."""
        self.pool_cache: dict[int, tuple[str | None, Requirements]] = {}
        self.matching: list[TopologyGroup] = []
        self.inverse: list[TopologyGroup] = []
        self.spread: list[TopologyGroup] = []
        self.affinity: list[TopologyGroup] = []
        self.anti: list[TopologyGroup] = []
        self.zone_bound = False
        self.eligible_zones: tuple[str, ...] = ()
        self.free = False
        """No node requirements, host ports or topology terms of its own, and no topology
        group counts it: where it lands among a pool's new claims changes nothing but cost."""


def _ladder(pod: Pod, prefer_taints: bool) -> Iterator[_Attempt]:
    pref_aff = list(pod.preferred_affinity)
    pref_anti = list(pod.preferred_anti_affinity)
    pref_node = [reqs for _, reqs in pod.preferred_terms]
    hard = [s for s in pod.spread if s.required]
    soft = [s for s in pod.spread if not s.required]
    tolerate = False
    while True:
        for term in pod.required_terms:
            yield _Attempt(
                requirements=term.intersect(pref_node[0]) if pref_node else term,
                tolerations=pod.tolerations,
                tolerate_prefer=tolerate,
                affinity=(*pod.affinity, *pref_aff),
                anti_affinity=(*pod.anti_affinity, *pref_anti),
                spread=(*hard, *soft),
                host_ports=pod.host_ports,
            )
        if pref_aff:
            pref_aff.pop(0)
        elif pref_anti:
            pref_anti.pop(0)
        elif pref_node:
            pref_node.pop(0)
        elif soft:
            soft.pop(0)
        elif prefer_taints and not tolerate:
            tolerate = True
        else:
            return


def _blocking(taints: Iterable[Taint], attempt: _Attempt) -> Taint | None:
    relevant = tuple(
        t for t in taints if not (attempt.tolerate_prefer and t.effect == PREFER_NO_SCHEDULE)
    )
    return untolerated(relevant, attempt.tolerations)


def _ports_conflict(wanted: Sequence[HostPort], used: Sequence[HostPort]) -> HostPort | None:
    for port in wanted:
        if any(port.conflicts(u) for u in used):
            return port
    return None


def _holding(
    frontier: Sequence[tuple[_Fit, float]],
    cpu: int,
    mem: int,
    pods: int,
    eph: int,
    ext: Iterable[tuple[str, int]],
    start: int = 0,
    ceiling: float = math.inf,
) -> tuple[int, float] | None:
    """The first type of ``frontier`` (cheapest first) from ``start`` on whose room holds the
    amounts, as (position, USD/h); None if none does for at most ``ceiling``."""
    for i in range(start, len(frontier)):
        fit, price = frontier[i]
        if price > ceiling:
            return None
        if (
            fit.cpu >= cpu
            and fit.mem >= mem
            and fit.pods >= pods
            and fit.eph >= eph
            and (not ext or all(fit.ext.get(k, 0) >= v for k, v in ext))
        ):
            return i, price
    return None


class _Solver:
    def __init__(
        self,
        *,
        nodepools: Sequence[NodePool],
        catalog: Catalog,
        nodes: Sequence[NodeView],
        daemonsets: Sequence[Pod],
        pending: Sequence[Pod],
    ) -> None:
        self.catalog = catalog
        ordered = sorted(nodepools, key=lambda p: (-p.weight, p.name))
        self.pools: list[_Pool] = []
        for i, pool in enumerate(ordered):
            reqs = pool.template_requirements()
            types = [
                t
                for t in catalog.instance_types(pool.kubelet)
                if t.requirements.conflict(reqs) is None
            ]
            entry = _Pool(i, pool, types)
            entry.daemons = [d for d in daemonsets if self._daemon_lands(d, entry, None)]
            self.pools.append(entry)
        self.prefer_taints = any(
            t.effect == PREFER_NO_SCHEDULE
            for taints in [*(p.taints for p in nodepools), *(n.taints for n in nodes)]
            for t in taints
        )
        self.zones = self._zone_universe(nodes)
        self.bins: list[_Bin] = []
        self.existing: list[_Bin] = []
        self.lanes: dict[tuple[int, str], list[_Bin]] = {}
        """Claims opened in this pass by (pool index, target type), in the order they joined."""
        self.claim_count: dict[str, int] = {}
        self.groups: dict[tuple[GroupKind, AffinityTerm | SpreadConstraint], TopologyGroup] = {}
        self.shapes: dict[tuple[str, frozenset[tuple[str, str]], _Attempt], _Shape] = {}
        self.admit_cache: dict[
            tuple[Requirements, Requirements], tuple[str | None, Requirements]
        ] = {}
        self.compat_cache: dict[tuple[int, Requirements], list[_Fit]] = {}
        self.rank_cache: dict[tuple[object, ...], list[tuple[_Fit, float, float]]] = {}
        self.frontier_cache: dict[tuple[int, Requirements], list[tuple[_Fit, float]]] = {}
        self.priced_cache: dict[tuple[int, Requirements], list[tuple[_Fit, float]]] = {}
        self.target_ok: dict[tuple[str, Requirements], bool] = {}
        self.demand = [0, 0, 0]
        self.min_cpu = self.min_mem = 0
        self._register_groups(pending, nodes)
        self._add_nodes(nodes)
        self._init_limits(nodes)

    # --- setup ----------------------------------------------------------------------------------

    def _zone_universe(self, nodes: Sequence[NodeView]) -> tuple[str, ...]:
        zones = {n.zone for n in nodes if n.zone}
        for entry in self.pools:
            zreq = entry.reqs.get(ZONE)
            for t in entry.types:
                for o in t.offerings:
                    if o.available and (zreq is None or zreq.has(o.zone)):
                        zones.add(o.zone)
        return tuple(sorted(zones))

    def _daemon_lands(self, daemon: Pod, entry: _Pool, itype: InstanceType | None) -> bool:
        hard = tuple(t for t in entry.pool.taints if t.effect != PREFER_NO_SCHEDULE)
        if untolerated(hard, daemon.tolerations) is not None:
            return False
        for term in daemon.required_terms:
            if entry.reqs.admit(term, undefined_ok=WELL_KNOWN_LABELS) is not None:
                continue
            if itype is None or itype.requirements.conflict(term) is None:
                return True
        return False

    def _fit(self, entry: _Pool, itype: InstanceType) -> _Fit:
        fit = entry.fits.get(itype.name)
        if fit is None:
            overhead = Resources()
            ports: list[HostPort] = []
            for daemon in entry.daemons:
                if self._daemon_lands(daemon, entry, itype):
                    overhead += daemon.requests + Resources(pods=1)
                    ports.extend(daemon.host_ports)
            offering = itype.cheapest(entry.reqs)
            price = offering.price if offering is not None else math.inf
            fit = _Fit(itype, overhead, tuple(ports), price)
            entry.fits[itype.name] = fit
        return fit

    def _group(self, kind: GroupKind, term: AffinityTerm | SpreadConstraint) -> TopologyGroup:
        group = self.groups.get((kind, term))
        if group is None:
            group = self.groups[(kind, term)] = TopologyGroup(kind, term)
        return group

    def _register_groups(self, pending: Sequence[Pod], nodes: Sequence[NodeView]) -> None:
        for pod in pending:
            for spread in pod.spread:
                self._group(GroupKind.SPREAD, spread)
            for term in (*pod.affinity, *pod.preferred_affinity):
                self._group(GroupKind.AFFINITY, term)
            for term in (*pod.anti_affinity, *pod.preferred_anti_affinity):
                self._group(GroupKind.ANTI_AFFINITY, term)
        for node in nodes:
            for pod in node.pods:
                for term in pod.anti_affinity:
                    self._group(GroupKind.ANTI_AFFINITY, term)

    def _add_nodes(self, nodes: Sequence[NodeView]) -> None:
        for node in sorted(nodes, key=lambda n: (not n.initialized, n.name)):
            b = _Bin(node.name, len(self.bins))
            b.labels = node.labels
            skip = {t.key for t in node.startup_taints} | {_UNREGISTERED_TAINT}
            b.taints = (
                node.taints
                if node.initialized
                else tuple(t for t in node.taints if t.key not in skip)
            )
            used = Resources(pods=len(node.pods))
            for pod in node.pods:
                used += pod.requests
                b.ports.extend(pod.host_ports)
            b.used = used
            room = node.allocatable - used
            b.cpu, b.mem, b.pods, b.eph = room.cpu, room.memory, room.pods, room.ephemeral_storage
            b.ext = dict(room.extended)
            b.zones = (node.zone,) if node.zone else ()
            self.bins.append(b)
            self.existing.append(b)
            for pod in node.pods:
                domains = {ZONE: b.zones, HOSTNAME: (b.name,)}
                for group in self.groups.values():
                    if group.matches(pod.namespace, pod.labels):
                        group.record(domains[group.key])
                for term in pod.anti_affinity:
                    self._group(GroupKind.ANTI_AFFINITY, term).record_owner(
                        domains[term.topology_key]
                    )

    def _init_limits(self, nodes: Sequence[NodeView]) -> None:
        for entry in self.pools:
            pool = entry.pool
            if pool.limits is None:
                continue
            remaining = {name: pool.limits.get(name) for name in pool.limit_names}
            for node in nodes:
                if node.nodepool == pool.name:
                    for name in remaining:
                        remaining[name] -= 1 if name == "nodes" else node.capacity.get(name)
            entry.remaining = remaining

    # --- shapes ---------------------------------------------------------------------------------

    def _shape(self, pod: Pod, attempt: _Attempt) -> _Shape:
        key = (pod.namespace, frozenset(pod.labels.items()), attempt)
        shape = self.shapes.get(key)
        if shape is not None:
            return shape
        shape = _Shape(pod.namespace, pod.labels, attempt)
        shape.candidates = list(self.existing)
        shape.matching = [g for g in self.groups.values() if g.matches(pod.namespace, pod.labels)]
        shape.inverse = [g for g in shape.matching if g.kind is GroupKind.ANTI_AFFINITY]
        shape.spread = [self._group(GroupKind.SPREAD, s) for s in attempt.spread]
        shape.affinity = [self._group(GroupKind.AFFINITY, t) for t in attempt.affinity]
        shape.anti = [self._group(GroupKind.ANTI_AFFINITY, t) for t in attempt.anti_affinity]
        owned = [*shape.spread, *shape.affinity, *shape.anti]
        shape.zone_bound = any(g.key == ZONE for g in [*owned, *shape.inverse])
        zreq = attempt.requirements.get(ZONE)
        shape.eligible_zones = tuple(z for z in self.zones if zreq is None or zreq.has(z))
        shape.free = not (
            owned
            or shape.matching
            or attempt.host_ports
            or len(attempt.requirements)
            or attempt.tolerate_prefer
        )
        self.shapes[key] = shape
        return shape

    def _allowed_zones(self, shape: _Shape) -> set[str]:
        """Zones where the pod's zone-keyed constraints hold right now."""
        allowed = set(shape.eligible_zones)
        for g in shape.spread:
            if g.key == ZONE:
                honor = isinstance(g.term, SpreadConstraint) and g.term.honor_node_affinity
                floor = g.global_min(shape.eligible_zones if honor else self.zones)
                allowed = {z for z in allowed if g.counts.get(z, 0) + 1 - floor <= g.max_skew}
        for g in shape.affinity:
            if g.key == ZONE and not (g.total == 0 and g in shape.matching):
                allowed = {z for z in allowed if g.counts.get(z, 0) > 0}
        for g in shape.anti:
            if g.key == ZONE:
                allowed = {z for z in allowed if not g.counts.get(z, 0)}
        for g in shape.inverse:
            if g.key == ZONE:
                allowed = {z for z in allowed if not g.owners.get(z, 0)}
        return allowed

    def _host_check(self, shape: _Shape, host: str) -> tuple[int, str]:
        for g in shape.spread:
            if g.key == HOSTNAME and g.counts.get(host, 0) + 1 > g.max_skew:
                return _PERMANENT, g.describe()
        for g in shape.anti:
            if g.key == HOSTNAME and g.counts.get(host, 0):
                return _PERMANENT, g.describe()
        for g in shape.inverse:
            if g.key == HOSTNAME and g.owners.get(host, 0):
                return _PERMANENT, "pod anti-affinity of a pod already there"
        for g in shape.affinity:
            first = g.total == 0 and g in shape.matching  # the first of a self-affine group
            if g.key == HOSTNAME and not g.counts.get(host, 0) and not first:
                return _TRANSIENT, g.describe()
        return _OK, ""

    def _pick_zone(self, shape: _Shape, zones: Iterable[str]) -> list[str]:
        spread = [g for g in shape.spread if g.key == ZONE]
        return sorted(zones, key=lambda z: (sum(g.counts.get(z, 0) for g in spread), z))

    # --- fitting ------------------------------------------------------------------------------

    @staticmethod
    def _room(item: _Item, b: _Bin | _Fit, used: Resources | None = None) -> bool:
        if used is None:
            if item.cpu > b.cpu or item.mem > b.mem or b.pods < 1 or item.eph > b.eph:
                return False
            return all(b.ext.get(k, 0) >= v for k, v in item.ext.items())
        total = used + item.requests
        if total.cpu > b.cpu or total.memory > b.mem or total.pods > b.pods:
            return False
        if total.ephemeral_storage > b.eph:
            return False
        return all(b.ext.get(k, 0) >= v for k, v in total.extended)

    def _admit(
        self, offered: Requirements, wanted: Requirements
    ) -> tuple[str | None, Requirements]:
        key = (offered, wanted)
        hit = self.admit_cache.get(key)
        if hit is None:
            reason = offered.admit(wanted, undefined_ok=WELL_KNOWN_LABELS)
            hit = (reason, offered if reason else offered.intersect(wanted))
            self.admit_cache[key] = hit
        return hit

    def _type_ok(self, itype: InstanceType, reqs: Requirements) -> bool:
        key = (itype.name, reqs)
        hit = self.target_ok.get(key)
        if hit is None:
            hit = itype.requirements.conflict(reqs) is None and itype.cheapest(reqs) is not None
            self.target_ok[key] = hit
        return hit

    def _compatible(self, entry: _Pool, reqs: Requirements) -> list[_Fit]:
        key = (entry.index, reqs)
        hit = self.compat_cache.get(key)
        if hit is None:
            hit = [self._fit(entry, t) for t in entry.types if self._type_ok(t, reqs)]
            self.compat_cache[key] = hit
        return hit

    def _priced(self, entry: _Pool, reqs: Requirements) -> list[tuple[_Fit, float]]:
        """Compatible types with their cheapest admitted offering price, cheapest first."""
        key = (entry.index, reqs)
        hit = self.priced_cache.get(key)
        if hit is None:
            priced = []
            for fit in self._compatible(entry, reqs):
                offering = fit.type.cheapest(reqs)
                assert offering is not None  # _compatible keeps only types with one
                priced.append((offering.price, fit.type.name, fit))
            priced.sort(key=lambda p: (p[0], p[1]))
            hit = [(fit, price) for price, _, fit in priced]
            self.priced_cache[key] = hit
        return hit

    def _frontier(self, entry: _Pool, reqs: Requirements) -> list[tuple[_Fit, float]]:
        """Compatible types no other compatible type beats on price *and* every resource.

        A dominated type can never be the better target, so the ranking only scores the
        frontier. Pools with limits keep every type: a bigger dominating type may not fit the
        remaining limits when the dominated one does.
        """
        key = (entry.index, reqs)
        hit = self.frontier_cache.get(key)
        if hit is not None:
            return hit
        priced = self._priced(entry, reqs)
        if entry.remaining is not None:
            hit = priced
        else:
            kept: list[tuple[_Fit, float]] = []
            for fit, price in priced:
                if not any(
                    k.cpu >= fit.cpu
                    and k.mem >= fit.mem
                    and k.pods >= fit.pods
                    and k.eph >= fit.eph
                    and k.ports == fit.ports
                    and all(k.ext.get(n, 0) >= v for n, v in fit.ext.items())
                    for k, _ in kept
                ):
                    kept.append((fit, price))
            hit = kept
        self.frontier_cache[key] = hit
        return hit

    def _ranked(
        self, entry: _Pool, reqs: Requirements, item: _Item
    ) -> list[tuple[_Fit, float, float]]:
        """Candidate targets for a claim opened by ``item``, best first.

        A type's score is its price over how many pods of ``item``'s size it holds (whole pods,
        at most the number of pods still queued): the price per pod of filling it with pods like
        this one. So a pod goes to the type whose shape suits it (cpu-heavy pods to cpu-cheap
        types, memory-heavy to memory-cheap), a type that wastes a fraction of a pod pays for
        it, and near the end of the queue a type bigger than what is left does too. Sizes are
        bucketed (5 % steps, rounded up) so the ranking is cached and computed rarely.
        """
        cpu, mem, left = self._sizes(item)
        key = (entry.index, reqs, cpu, mem, left, item.eph, tuple(item.ext.items()))
        hit = self.rank_cache.get(key)
        if hit is None:
            scored = []
            icpu, imem, ieph, iext = item.cpu, item.mem, item.eph, item.ext
            for fit, price in self._frontier(entry, reqs):
                if fit.cpu < icpu or fit.mem < imem or fit.pods < 1 or fit.eph < ieph:
                    continue
                if iext and any(fit.ext.get(k, 0) < v for k, v in iext.items()):
                    continue
                held = min(fit.cpu // cpu, fit.mem // mem, fit.pods, left)
                scored.append((price / max(held, 1), fit.type.name, fit, price))
            scored.sort(key=lambda s: (s[0], s[1]))
            hit = [(s[2], s[3], s[0]) for s in scored]
            self.rank_cache[key] = hit
        return hit

    def _sizes(self, item: _Item) -> tuple[float, float, int]:
        """The bucketed (cpu, memory, pods-left cap) the target scores use for ``item``.

        The cap on pods left only matters near the end of the queue; above ``_TAIL`` pods it
        is lifted, so the ranking cache is not split by a count that changes with every pod.
        """
        left = self.demand[2]
        return item.cpu_rep, item.mem_rep, max(left, 1) if left <= _TAIL else _NO_CAP

    def _bar(self, item: _Item, entry: _Pool) -> float:
        """The most a claim of ``entry`` may cost per pod of ``item``'s size to be filled.

        Filling a claim whose type is expensive *for pods like this one* can cost more than
        opening a claim of the type that suits the pod, so a claim opened in this pass
        qualifies only when its target's price per pod of this size is within ``_TOLERANCE`` of
        the best target's (see ``_ranked``).
        """
        ranked = self._ranked(entry, entry.reqs, item)
        return ranked[0][2] * (1 + _TOLERANCE) if ranked else math.inf

    def _alone(self, item: _Item, entry: _Pool) -> float:
        """USD/h of the cheapest node of ``entry`` that holds ``item`` by itself."""
        r = item.requests
        frontier = self._frontier(entry, entry.reqs)
        found = _holding(frontier, r.cpu, r.memory, 1, r.ephemeral_storage, r.extended)
        return found[1] if found is not None else math.inf

    def _step(self, item: _Item, b: _Bin, alone: float, grow: bool) -> tuple[float, _Fit] | None:
        """What putting ``item`` on claim ``b`` adds to the price of the cheapest type that
        holds its pods, with that type; None when it is more than ``alone`` (a node of its own
        for ``item``). With ``grow`` (no room left in the target) the type must also keep the
        claim's launch zones (what topology counted stays true) and clash with no host port of
        its pods, as it becomes the new target."""
        entry = b.pool
        assert entry is not None
        floor = b.floor
        if floor is None or floor[0] is not b.used or floor[1] is not b.reqs:
            frontier = self._frontier(entry, b.reqs)
            u = b.used
            at = _holding(frontier, u.cpu, u.memory, u.pods, u.ephemeral_storage, u.extended)
            if at is None:
                return None
            floor = b.floor = (b.used, b.reqs, frontier, at[0], at[1])
        _, reqs, frontier, start, now = floor
        ceiling = now + alone * (1 + 1e-9)
        u = b.used
        cpu, mem, pods, eph = (
            u.cpu + item.cpu,
            u.memory + item.mem,
            u.pods + 1,
            u.ephemeral_storage + item.eph,
        )
        ext = (u + item.requests).extended if item.ext else ()
        while True:
            found = _holding(frontier, cpu, mem, pods, eph, ext, start, ceiling)
            if found is None:
                return None
            fit = frontier[found[0]][0]
            if not grow or (
                (not b.pod_ports or _ports_conflict(fit.ports, b.pod_ports) is None)
                and set(b.zones) <= set(self._claim_zones(reqs, fit.type))
            ):
                return found[1] - now, fit
            start = found[0] + 1

    def _limit_ok(self, entry: _Pool, fit: _Fit, released: Mapping[str, int]) -> bool:
        if entry.remaining is None:
            return True
        for name, left in entry.remaining.items():
            want = 1 if name == "nodes" else fit.cap.get(name)
            if want > left + released.get(name, 0):
                return False
        return True

    def _reserve(self, entry: _Pool, b: _Bin, fit: _Fit) -> None:
        if entry.remaining is None:
            return
        for name in entry.remaining:
            entry.remaining[name] += b.reserved.get(name, 0)
        b.reserved = {n: 1 if n == "nodes" else fit.cap.get(n) for n in entry.remaining}
        for name, amount in b.reserved.items():
            entry.remaining[name] -= amount

    def _min_values_ok(self, entry: _Pool, reqs: Requirements, used: Resources) -> str | None:
        wanted = [r for r in reqs.values() if r.min_values]
        if not wanted:
            return None
        fits = [
            f for f in self._compatible(entry, reqs) if (used + f.overhead).fits(f.type.allocatable)
        ]
        for req in wanted:
            seen = set()
            for f in fits:
                value = f.type.requirements.get(req.key)
                if value is not None and value.single_value() is not None:
                    seen.add(value.single_value())
            if len(seen) < (req.min_values or 0):
                return f"minValues {req.min_values} for {req.key} (only {len(seen)} fit)"
        return None

    def _try_bin(self, item: _Item, shape: _Shape, b: _Bin, zones: set[str] | None) -> int:
        """Place ``item`` on ``b`` if it fits; returns _OK, _TRANSIENT or _PERMANENT."""
        attempt = shape.attempt
        if _blocking(b.taints, attempt) is not None:
            return _PERMANENT
        if attempt.host_ports and _ports_conflict(attempt.host_ports, b.ports) is not None:
            return _PERMANENT
        if b.existing:
            if attempt.requirements.match_labels(b.labels) is not None:
                return _PERMANENT
            reqs = b.reqs
        else:
            assert b.pool is not None
            reason, reqs = self._admit(b.reqs, attempt.requirements)
            if reason is not None:
                return _PERMANENT
        code, _ = self._host_check(shape, b.name)
        if code != _OK:
            return code
        pin: str | None = None
        if zones is not None:
            possible = [z for z in b.zones if z in zones]
            if not possible:
                return _TRANSIENT
            zreq = b.reqs.find(ZONE)
            if not b.existing and (zreq is None or zreq.single_value() is None):
                pin = self._pick_zone(shape, possible)[0]
                reqs = reqs.add(Requirement.any_of(ZONE, (pin,)))
        if not b.existing and not self._claim_accepts(item, b, reqs):
            return _TRANSIENT
        self._commit(item, shape, b)
        return _OK

    def _claim_accepts(self, item: _Item, b: _Bin, reqs: Requirements) -> bool:
        if reqs is not b.reqs:
            return self._retarget(item, b, reqs)
        if b.pool is not None and b.pool.min_values:
            return self._min_values_ok(b.pool, reqs, b.used + item.requests) is None
        return True

    def _retarget(self, item: _Item, b: _Bin, reqs: Requirements) -> bool:
        """Narrow a claim's requirements; keep its target if still compatible, else find one."""
        entry, fit = b.pool, b.fit
        assert entry is not None
        assert fit is not None
        if self._min_values_ok(entry, reqs, b.used + item.requests) is not None:
            return False
        if not self._type_ok(fit.type, reqs):
            for cand, _, _ in self._ranked(entry, reqs, item):
                if (
                    self._room(item, cand, b.used)
                    and self._limit_ok(entry, cand, b.reserved)
                    and _ports_conflict(cand.ports, b.pod_ports) is None
                ):
                    fit = cand
                    break
            else:
                return False
            self._reserve(entry, b, fit)
            b.ports = [*fit.ports, *b.pod_ports]
        self._set_fit(b, fit, reqs)
        b.reqs = reqs
        self._settle_zones(b)
        return True

    def _set_fit(self, b: _Bin, fit: _Fit, reqs: Requirements) -> None:
        if b.fit is not fit:
            assert b.pool is not None
            self.lanes.setdefault((b.pool.index, fit.type.name), []).append(b)
        b.fit = fit
        offering = fit.type.cheapest(reqs)
        b.price = offering.price if offering is not None else math.inf
        room = Resources(
            cpu=fit.cpu, memory=fit.mem, pods=fit.pods, ephemeral_storage=fit.eph,
            extended=tuple(sorted(fit.ext.items())),
        ) - b.used  # fmt: skip
        b.cpu, b.mem, b.pods, b.eph = room.cpu, room.memory, room.pods, room.ephemeral_storage
        b.ext = dict(room.extended)

    def _settle_zones(self, b: _Bin) -> None:
        """Recompute where a claim may launch; a single possible zone is pinned, so the zone
        its pods were counted in cannot change later."""
        assert b.fit is not None
        b.zones = self._claim_zones(b.reqs, b.fit.type)
        zreq = b.reqs.find(ZONE)
        if len(b.zones) == 1 and (zreq is None or zreq.single_value() is None):
            b.reqs = b.reqs.add(Requirement.any_of(ZONE, b.zones))

    def _claim_zones(self, reqs: Requirements, itype: InstanceType) -> tuple[str, ...]:
        zreq, creq = reqs.find(ZONE), reqs.find(CAPACITY_TYPE)
        return tuple(
            sorted(
                {
                    o.zone
                    for o in itype.offerings
                    if o.available
                    and (zreq is None or zreq.has(o.zone))
                    and (creq is None or creq.has(o.capacity_type))
                }
            )
        )

    def _commit(self, item: _Item, shape: _Shape, b: _Bin) -> None:
        b.cpu -= item.cpu
        b.mem -= item.mem
        b.pods -= 1
        b.eph -= item.eph
        for k, v in item.ext.items():
            b.ext[k] = b.ext.get(k, 0) - v
        b.used += item.requests
        b.ports.extend(shape.attempt.host_ports)
        b.pod_ports.extend(shape.attempt.host_ports)
        b.pods_placed.append(item.pod)
        if not shape.free:
            b.free = False
        self.demand[0] -= item.cpu
        self.demand[1] -= item.mem
        self.demand[2] -= 1
        host = (b.name,)
        for g in shape.matching:
            if g.key == HOSTNAME:
                g.record(host)
            elif g.kind is GroupKind.ANTI_AFFINITY or len(b.zones) == 1:
                g.record(b.zones)
        for g in shape.anti:
            g.record_owner(host if g.key == HOSTNAME else b.zones)
        if b.pods < 1 or b.cpu < self.min_cpu or b.mem < self.min_mem:
            b.closed = True

    def _new_claim(self, item: _Item, shape: _Shape, entry: _Pool, zones: set[str] | None) -> str:
        """Open a claim on ``entry`` for ``item``; returns "" on success or why not."""
        attempt = shape.attempt
        cached = shape.pool_cache.get(entry.index)
        if cached is None:
            taint = _blocking(entry.pool.taints, attempt)
            if taint is not None:
                cached = (f"taint {taint} not tolerated", entry.reqs)
            else:
                cached = self._admit(entry.reqs, attempt.requirements)
                if cached[0] is not None:
                    cached = (f"incompatible requirement {cached[0]}", entry.reqs)
            shape.pool_cache[entry.index] = cached
        reason, reqs = cached
        if reason is not None:
            return reason
        name = f"{entry.pool.name}-{self.claim_count.get(entry.pool.name, 0) + 1}"
        code, why = self._host_check(shape, name)
        if code != _OK:
            return f"{why} cannot be met on a new node"
        options: list[Requirements] = [reqs]
        if zones is not None:
            zreq = reqs.get(ZONE)
            allowed = [z for z in zones if zreq is None or zreq.has(z)]
            if not allowed:
                return "no zone satisfies the pod's topology constraints"
            options = [
                reqs.add(Requirement.any_of(ZONE, (z,))) for z in self._pick_zone(shape, allowed)
            ]
        no_room = no_limit = False
        for zreqs in options:
            ranked = self._ranked(entry, zreqs, item)
            for fit, _, _ in ranked:
                if not self._room(item, fit):
                    no_room = True
                    continue
                if attempt.host_ports and _ports_conflict(attempt.host_ports, fit.ports):
                    continue
                if not self._limit_ok(entry, fit, {}):
                    no_limit = True
                    continue
                short = self._min_values_ok(entry, zreqs, item.requests)
                if short is not None:
                    return short
                self.claim_count[entry.pool.name] = self.claim_count.get(entry.pool.name, 0) + 1
                b = _Bin(name, len(self.bins))
                b.existing = False
                b.pool = entry
                b.taints = entry.pool.taints
                b.reqs = zreqs
                b.ports = list(fit.ports)
                self._reserve(entry, b, fit)
                self._set_fit(b, fit, zreqs)
                self._settle_zones(b)
                self.bins.append(b)
                self._commit(item, shape, b)
                return ""
        if no_limit:
            names = ", ".join(sorted(entry.remaining or {}))
            return f"nodepool limits ({names}) would be exceeded"
        if no_room or any(self._priced(entry, zreqs) for zreqs in options):
            return f"no instance type has room for requests {item.requests} plus daemonsets"
        return "no compatible instance type with an available offering"

    # --- the pass -----------------------------------------------------------------------------

    def _schedule(self, item: _Item) -> str:
        """Place one pod; returns "" on success or the reason of the most relaxed attempt."""
        reasons: list[str] = []
        for attempt in _ladder(item.pod, self.prefer_taints):
            shape = self._shape(item.pod, attempt)
            zones = self._allowed_zones(shape) if shape.zone_bound else None
            if self._try_bins(item, shape, zones, picky=True):
                return ""
            reasons = []
            for entry in self.pools:
                why = self._new_claim(item, shape, entry, zones)
                if not why:
                    return ""
                reasons.append(f"nodepool {entry.pool.name!r}: {why}")
            if self._try_bins(item, shape, zones, picky=False):
                return ""
        if not self.pools:
            return "no NodePool, and no existing node has room"
        return "; ".join(reasons)

    def _try_bins(self, item: _Item, shape: _Shape, zones: set[str] | None, *, picky: bool) -> bool:
        """Existing nodes first fit; then the best-balanced of the first few claims with room.

        ``picky`` leaves out claims whose target is too expensive for pods of this size (see
        ``_bar``); the caller drops it when no new claim can be opened.
        """
        cpu, mem, eph, ext = item.cpu, item.mem, item.eph, item.ext
        dead = shape.dead
        for b in shape.candidates:
            if b.closed or b.serial in dead:
                continue
            if cpu > b.cpu or mem > b.mem or b.pods < 1 or eph > b.eph:
                continue
            if ext and any(b.ext.get(k, 0) < v for k, v in ext.items()):
                continue
            code = self._try_bin(item, shape, b, zones)
            if code == _OK:
                return True
            if code == _PERMANENT:
                dead.add(b.serial)
        cpu_rep, mem_rep, left = self._sizes(item)
        bars: dict[int, float] = {}
        shortlist: list[tuple[float, int, _Bin]] = []
        for key, lane in self.lanes.items():
            index, name = key
            entry = self.pools[index]
            fit = entry.fits[name]
            held = max(min(fit.cpu // cpu_rep, fit.mem // mem_rep, fit.pods, left), 1)
            bar = math.inf
            if picky:
                bar = bars.get(index, -1.0)
                if bar < 0:
                    bar = bars[index] = self._bar(item, entry)
                if fit.pod_price > bar * held:
                    continue
            mine = shape.lanes.get(key)
            if mine is None:
                mine = shape.lanes[key] = []
            seen = shape.lane_seen.get(key, 0)
            if seen < len(lane):
                mine.extend(lane[seen:])
                shape.lane_seen[key] = len(lane)
            taken = 0
            for b in mine:
                if b.closed or b.serial in dead or b.fit is not fit:
                    continue
                if cpu > b.cpu or mem > b.mem or b.pods < 1 or eph > b.eph:
                    continue
                if ext and any(b.ext.get(k, 0) < v for k, v in ext.items()):
                    continue
                if b.price > bar * held:
                    continue
                # The larger leftover share after placing: small means full and balanced.
                share = max((b.cpu - cpu) / max(fit.cpu, 1), (b.mem - mem) / max(fit.mem, 1))
                shortlist.append((share, b.serial, b))
                taken += 1
                if taken >= _SHORTLIST:
                    break
        placed = False
        shortlist.sort(key=lambda s: (s[0], s[1]))
        for _, _, b in shortlist:
            code = self._try_bin(item, shape, b, zones)
            if code == _OK:
                placed = True
                break
            if code == _PERMANENT:
                dead.add(b.serial)
        if not placed and picky:
            placed = self._try_cheap(item, shape, zones, {b.serial for _, _, b in shortlist})
        if len(dead) > 64:
            self._compact(shape)
        return placed

    def _try_cheap(
        self, item: _Item, shape: _Shape, zones: set[str] | None, tried: set[int]
    ) -> bool:
        """Before a new claim is opened for ``item``: a claim it may join, or grow into a
        bigger target, for no more than a node of its own would cost.

        A claim launches as the cheapest type that holds what it got, not as its target, so
        a pod joining it costs the step from the cheapest type holding its pods to the cheapest
        holding them and the pod: often nothing, even on a claim whose target is too dear for
        pods of this size (``_bar``), and often less than a new node when the claim must move
        to a bigger target (pools without limits or minValues only: the reservation against
        limits and the minValues check follow the target). The newest claims of each lane are
        looked at first, ``_CHEAP_VISITS`` in all.
        """
        cpu, mem, eph, ext = item.cpu, item.mem, item.eph, item.ext
        dead = shape.dead
        alone: dict[int, float] = {}
        found: list[tuple[float, float, int, _Bin, _Fit | None]] = []
        budget = _CHEAP_VISITS
        checks = 2 * _SHORTLIST
        for key, lane in self.lanes.items():
            index = key[0]
            entry = self.pools[index]
            fit = entry.fits[key[1]]
            cost = alone.get(index)
            if cost is None:
                cost = alone[index] = self._alone(item, entry)
            for b in reversed(lane):
                budget -= 1
                if budget < 0 or checks <= 0:
                    break
                if b.closed or b.serial in dead or b.fit is not fit or b.serial in tried:
                    continue
                grow = cpu > b.cpu or mem > b.mem or b.pods < 1 or eph > b.eph
                if not grow and ext and any(b.ext.get(k, 0) < v for k, v in ext.items()):
                    grow = True
                if grow and not entry.growable:
                    continue
                checks -= 1
                step = self._step(item, b, cost, grow)
                if step is None:
                    continue
                if grow:
                    found.append((step[0], 1.0, b.serial, b, step[1]))
                else:
                    share = max((b.cpu - cpu) / max(fit.cpu, 1), (b.mem - mem) / max(fit.mem, 1))
                    found.append((step[0], share, b.serial, b, None))
            if budget < 0 or checks <= 0:
                break
        found.sort(key=lambda f: (f[0], f[1], f[2]))
        for _, _, _, b, grown_fit in found:
            if b.closed or b.serial in dead:
                continue
            if grown_fit is not None:
                self._set_fit(b, grown_fit, b.reqs)
                b.ports = [*grown_fit.ports, *b.pod_ports]
                self._settle_zones(b)
            code = self._try_bin(item, shape, b, zones)
            if code == _OK:
                return True
            if code == _PERMANENT:
                dead.add(b.serial)
        return False

    @staticmethod
    def _compact(shape: _Shape) -> None:
        dead = shape.dead
        shape.candidates = [b for b in shape.candidates if not b.closed and b.serial not in dead]
        for key, lane in shape.lanes.items():
            shape.lanes[key] = [
                b
                for b in lane
                if not b.closed
                and b.serial not in dead
                and b.fit is not None
                and b.fit.type.name == key[1]
            ]
        dead.clear()

    def run(self, pending: Sequence[Pod]) -> SimulationResult:
        queue = sorted(
            pending,
            key=lambda p: (-p.requests.cpu, -p.requests.memory, p.created, p.uid, p.key),
        )
        items = [_Item(p) for p in queue]
        self.min_cpu = min((i.cpu for i in items), default=0)
        self.min_mem = min((i.mem for i in items), default=0)
        self.demand = [sum(i.cpu for i in items), sum(i.mem for i in items), len(items)]
        failed: dict[str, str] = {}
        while items:
            retry = []
            for item in items:
                reason = self._schedule(item)
                if reason:
                    failed[item.pod.uid or item.pod.key] = reason
                    retry.append(item)
            if len(retry) == len(items):
                break
            items = retry
        for entry in self.pools:
            self._repack(entry)
        return self._result(queue, failed)

    def _repack(self, entry: _Pool) -> None:
        """Pack the pool's claims that hold only free pods again, node by node (``repack``),
        and keep that packing when it costs less. Pools with limits or minValues keep theirs:
        the pod-by-pod pass is what checks those."""
        if entry.remaining is not None or entry.min_values:
            return
        claims = [
            b
            for b in self.bins
            if b.pool is entry and not b.existing and b.free and b.pods_placed and b.fit
        ]
        pods = [p for b in claims for p in b.pods_placed]
        if len(claims) * REPACK_WIDTH * min(REPACK_MISSES, len(pods)) > _REPACK_BUDGET:
            # Its work grows with nodes x pods scanned per node: many small nodes of a big
            # batch (burstable types holding a pod or two each) would cost seconds for little.
            return
        # What a pod with no requirements of its own gets from the pool (claims may have
        # added a zone since, when their target was offered in one zone only).
        reason, reqs = self._admit(entry.reqs, Requirements())
        if reason is not None:
            return
        frontier = self._frontier(entry, reqs)
        boxes = [Box(price, f.cpu, f.mem, f.pods, f.eph, f.ext or None) for f, price in frontier]
        sizes = [
            Size(
                p.requests.cpu,
                p.requests.memory,
                p.requests.ephemeral_storage,
                dict(p.requests.extended) or None,
            )
            for p in pods
        ]
        now = sum(self._finalize(b).price for b in claims)
        best: tuple[float, list[tuple[int, list[int]]]] | None = None
        total_cpu, total_mem = sum(s.cpu for s in sizes), sum(s.memory for s in sizes)
        for unit in unit_prices(boxes, total_cpu, total_mem):
            packed = cover(sizes, boxes, unit)
            if packed is not None and (best is None or packed[0] < best[0]):
                best = packed
        if best is None or best[0] >= now * (1 - 1e-9):
            return
        names = [b.name for b in claims]
        fresh: list[_Bin] = []
        for index, (box, members) in enumerate(best[1]):
            if index < len(names):
                name = names[index]
            else:
                count = self.claim_count.get(entry.pool.name, 0) + 1
                self.claim_count[entry.pool.name] = count
                name = f"{entry.pool.name}-{count}"
            fit = frontier[box][0]
            b = _Bin(name, len(self.bins) + index)
            b.existing = False
            b.pool = entry
            b.taints = entry.pool.taints
            b.reqs = reqs
            b.ports = list(fit.ports)
            b.fit = fit
            b.pods_placed = [pods[i] for i in members]
            used = Resources()
            for p in b.pods_placed:
                used += p.requests + Resources(pods=1)
            b.used = used
            fresh.append(b)
        gone = {id(b) for b in claims}
        self.bins = [b for b in self.bins if id(b) not in gone] + fresh

    def _result(self, queue: Sequence[Pod], failed: Mapping[str, str]) -> SimulationResult:
        placed: list[tuple[Pod, str]] = []
        claims: list[NodeClaimPlan] = []
        done: set[int] = set()
        for b in self.bins:
            if b.existing:
                placed.extend((p, b.name) for p in b.pods_placed)
                done.update(id(p) for p in b.pods_placed)
            elif b.pods_placed:
                claims.append(self._finalize(b))
                done.update(id(p) for p in b.pods_placed)
        unschedulable = [(p, failed[p.uid or p.key]) for p in queue if id(p) not in done]
        return SimulationResult(tuple(placed), tuple(claims), tuple(unschedulable))

    def _finalize(self, b: _Bin) -> NodeClaimPlan:
        entry = b.pool
        assert entry is not None
        assert b.fit is not None
        used = b.used
        ucpu, umem, upods, ueph = used.cpu, used.memory, used.pods, used.ephemeral_storage
        options = [
            (fit, price)
            for fit, price in self._priced(entry, b.reqs)
            if fit.cpu >= ucpu and fit.mem >= umem and fit.pods >= upods and fit.eph >= ueph
        ]
        if used.extended:
            options = [
                (f, p) for f, p in options if all(f.ext.get(k, 0) >= v for k, v in used.extended)
            ]
        if b.reserved:
            options = [
                (f, p)
                for f, p in options
                if all((1 if n == "nodes" else f.cap.get(n)) <= v for n, v in b.reserved.items())
            ]
        if b.pod_ports:
            options = [(f, p) for f, p in options if _ports_conflict(f.ports, b.pod_ports) is None]
        cheapest, price = options[0]
        return NodeClaimPlan(
            name=b.name,
            nodepool=entry.pool.name,
            requirements=b.reqs,
            pods=tuple(b.pods_placed),
            requests=used + cheapest.overhead,
            instance_types=tuple(f.type for f, _ in options),
            price=price,
            taints=entry.pool.taints,
            startup_taints=entry.pool.startup_taints,
            labels=b.reqs.single_values(),
        )


def simulate(
    pods: Sequence[Pod],
    *,
    nodepools: Sequence[NodePool],
    catalog: Catalog,
    nodes: Sequence[NodeView] = (),
    daemonsets: Sequence[Pod] = (),
) -> SimulationResult:
    """Schedule ``pods`` onto ``nodes`` and new NodeClaims from ``nodepools`` (see module doc)."""
    solver = _Solver(
        nodepools=nodepools, catalog=catalog, nodes=nodes, daemonsets=daemonsets, pending=pods
    )
    return solver.run(pods)
