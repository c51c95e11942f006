"""The scheduler loop: takes pods off the queue and places each on a node, a claim of this
pass, or a new claim, walking the relaxation ladder (see the package docstring).

Owns ``Scheduler`` and ``simulate``. It chooses *where to try* (existing nodes first fit, the
shortlist of claims, the cheap join or grow, new claims by pool weight) and commits placements;
it must not reimplement what the concept modules decide: topology (``topology``), types and
prices (``offerings``), whether a node or claim takes a pod (``existing``, ``claims``), the
ladder (``preferences``), the queue order (``queue``) or the repack pass (``repack``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from provisioner.catalog import Catalog
from provisioner.labels import NODEPOOL, ZONE
from provisioner.model import PREFER_NO_SCHEDULE, NodePool, NodeView, Pod
from provisioner.requirements import Requirement, Requirements
from provisioner.scheduling.bins import Bin
from provisioner.scheduling.claims import PRICE_SLACK, Lanes, NewClaim
from provisioner.scheduling.existing import ExistingNode
from provisioner.scheduling.offerings import Offerings, launch_zones, ports_conflict
from provisioner.scheduling.pools import Fit, Pool, offered_zones
from provisioner.scheduling.pools import pools as make_pools
from provisioner.scheduling.preferences import Attempt, ladder
from provisioner.scheduling.queue import Backlog, Item
from provisioner.scheduling.repack import coalesce, into_one, repack
from provisioner.scheduling.results import NodeClaimPlan, SimulationResult, Verdict
from provisioner.scheduling.shapes import Shape
from provisioner.scheduling.topology import Topology

__all__ = ["Scheduler", "simulate"]

SHORTLIST = 8
"""Claims with room compared per pod and lane (``Scheduler._try_bins``). A bound on the work
per pod, whatever the number of open claims; more compares buy little packing for their cost
(the trade is measured by bench/provisioner_sim.py)."""
CHEAP_VISITS = 64
"""Claims looked at per pod by ``Scheduler._try_cheap``, newest of each lane first (the ones
most likely to have room): the join-or-grow look is a bounded extra before a new claim."""
CHEAP_CHECKS = 2 * SHORTLIST
"""Of those, how many get the price step (``NewClaim.step``, a frontier scan) computed."""
COMPACT_AFTER = 64
"""Dead bins a shape remembers before its candidate lists are rebuilt without them: a rebuild
walks every list, so it waits until enough entries are dead to be worth dropping."""

# Plain globals: reading an enum member off its class costs several times a global lookup,
# and verdicts are compared for every node and claim a pod is tried on.
_OK, _PERMANENT = Verdict.OK, Verdict.PERMANENT


class Scheduler:
    """One pass over one batch: build it, call ``run`` once."""

    def __init__(
        self,
        *,
        nodepools: Sequence[NodePool],
        catalog: Catalog,
        nodes: Sequence[NodeView],
        daemonsets: Sequence[Pod],
        pending: Sequence[Pod],
        one_claim: bool = False,
    ) -> None:
        self.one_claim = one_claim
        self.pools: list[Pool] = make_pools(nodepools, catalog, daemonsets)
        self.prefer_taints = any(
            t.effect == PREFER_NO_SCHEDULE
            for taints in [*(p.taints for p in nodepools), *(n.taints for n in nodes)]
            for t in taints
        )
        zones = {n.zone for n in nodes if n.zone} | offered_zones(self.pools)
        self.topology = Topology(zones=zones, pending=pending, nodes=nodes)
        self.backlog = Backlog(pending)
        self.offers = Offerings(self.backlog)
        self.existing: list[ExistingNode] = []
        self.claims: list[NewClaim] = []
        self.lanes: Lanes = {}
        """Claims opened in this pass by (pool index, target type), in the order they joined."""
        self.claim_count: dict[str, int] = {}
        self.shapes: dict[tuple[str, frozenset[tuple[str, str]], Attempt], Shape] = {}
        for node in sorted(nodes, key=lambda n: (not n.initialized, n.name)):
            b = ExistingNode(node, len(self.existing))
            self.existing.append(b)
            for pod in node.pods:
                self.topology.record_running(pod, b.name, b.zones)
        for entry in self.pools:
            entry.start_limits(nodes)

    def _shape(self, pod: Pod, attempt: Attempt) -> Shape:
        key = (pod.namespace, frozenset(pod.labels.items()), attempt)
        shape = self.shapes.get(key)
        if shape is None:
            topology = self.topology.for_pod(pod.namespace, pod.labels, attempt)
            shape = self.shapes[key] = Shape(attempt, topology, list(self.existing))
        return shape

    def _next_name(self, entry: Pool) -> str:
        count = self.claim_count[entry.pool.name] = self.claim_count.get(entry.pool.name, 0) + 1
        return f"{entry.pool.name}-{count}"

    def _commit(self, item: Item, shape: Shape, b: Bin) -> None:
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
        if b.free and not (isinstance(b, NewClaim) and shape.free_in(b.pool, self.offers)):
            b.free = False
        backlog = self.backlog
        backlog.left -= 1
        shape.topology.record(b.name, b.zones)
        if b.pods < 1 or b.cpu < backlog.min_cpu or b.mem < backlog.min_mem:
            b.closed = True

    def _try_claim(self, item: Item, shape: Shape, b: NewClaim, zones: set[str] | None) -> Verdict:
        code = b.check(item, shape.attempt, shape.topology, zones, self.offers, self.lanes)
        if code is _OK:
            self._commit(item, shape, b)
        return code

    def _new_claim(self, item: Item, shape: Shape, entry: Pool, zones: set[str] | None) -> str:
        """Open a claim on ``entry`` for ``item``; returns "" on success or why not."""
        attempt = shape.attempt
        reason, reqs = shape.pool_verdict(entry, self.offers)
        if reason is not None:
            return reason
        name = f"{entry.pool.name}-{self.claim_count.get(entry.pool.name, 0) + 1}"
        code, why = shape.topology.host_check(name)
        if code is not _OK:
            return f"{why} cannot be met on a new node"
        options: list[Requirements] = [reqs]
        if zones is not None:
            zreq = reqs.get(ZONE)
            allowed = [z for z in zones if zreq is None or zreq.has(z)]
            if not allowed:
                return "no zone satisfies the pod's topology constraints"
            options = [
                reqs.add(Requirement.any_of(ZONE, (z,))) for z in shape.topology.pick_zone(allowed)
            ]
        no_room = no_limit = False
        for zreqs in options:
            for fit, _, _ in self.offers.ranked(entry, zreqs, item):
                if not fit.holds(item):
                    no_room = True
                    continue
                if attempt.host_ports and ports_conflict(attempt.host_ports, fit.ports):
                    continue
                if not entry.limit_ok(fit, {}):
                    no_limit = True
                    continue
                short = self.offers.min_values_short(entry, zreqs, item.requests)
                if short is not None:
                    return short
                name = self._next_name(entry)
                serial = len(self.existing) + len(self.claims)
                b = NewClaim.open(name, serial, entry, zreqs, fit, self.lanes)
                self.claims.append(b)
                self._commit(item, shape, b)
                return ""
        if no_limit:
            names = ", ".join(sorted(entry.remaining or {}))
            return f"nodepool limits ({names}) would be exceeded"
        if no_room or any(self.offers.priced(entry, zreqs) for zreqs in options):
            return f"no instance type has room for requests {item.requests} plus daemonsets"
        return "no compatible instance type with an available offering"

    def _schedule(self, item: Item) -> str:
        """Place one pod; returns "" on success or the reason of the most relaxed attempt."""
        reasons: list[str] = []
        for attempt in ladder(item.pod, self.prefer_taints):
            shape = self._shape(item.pod, attempt)
            zones = shape.topology.allowed_zones() if shape.topology.zone_bound else None
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

    def _try_bins(self, item: Item, shape: Shape, zones: set[str] | None, *, picky: bool) -> bool:
        """Existing nodes first fit; then the best-balanced of the first few claims with room.

        ``picky`` leaves out claims whose target is too expensive for pods of this size (see
        ``Offerings.bar``); the caller drops it when no new claim can be opened.
        """
        cpu, mem, eph, ext = item.cpu, item.mem, item.eph, item.ext
        dead = shape.dead
        attempt, topology = shape.attempt, shape.topology
        for node in shape.candidates:
            if node.closed or node.serial in dead:
                continue
            if cpu > node.cpu or mem > node.mem or node.pods < 1 or eph > node.eph:
                continue
            if ext and any(node.ext.get(k, 0) < v for k, v in ext.items()):
                continue
            code = node.check(attempt, topology, zones)
            if code is _OK:
                self._commit(item, shape, node)
                return True
            if code is _PERMANENT:
                dead.add(node.serial)
        cpu_rep, mem_rep, left = self.backlog.sizes(item)
        bars: dict[int, float] = {}
        shortlist: list[tuple[float, int, NewClaim]] = []
        for key, lane in self.lanes.items():
            index, name = key
            entry = self.pools[index]
            fit = entry.fits[name]
            held = max(min(fit.cpu // cpu_rep, fit.mem // mem_rep, fit.pods, left), 1)
            bar = math.inf
            if picky:
                bar = bars.get(index, -1.0)
                if bar < 0:
                    bar = bars[index] = self.offers.bar(item, entry)
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
                if taken >= SHORTLIST:
                    break
        placed = False
        shortlist.sort(key=lambda s: (s[0], s[1]))
        for _, _, b in shortlist:
            code = self._try_claim(item, shape, b, zones)
            if code is _OK:
                placed = True
                break
            if code is _PERMANENT:
                dead.add(b.serial)
        if not placed and picky:
            placed = self._try_cheap(item, shape, zones, {b.serial for _, _, b in shortlist})
        if len(dead) > COMPACT_AFTER:
            self._compact(shape)
        return placed

    def _try_cheap(self, item: Item, shape: Shape, zones: set[str] | None, tried: set[int]) -> bool:
        """Before a new claim is opened for ``item``: a claim it may join, or grow into a
        bigger target, for no more than a node of its own would cost.

        A claim launches as the cheapest type that holds what it got, not as its target, so
        a pod joining it costs the step from the cheapest type holding its pods to the cheapest
        holding them and the pod: often nothing, even on a claim whose target is too dear for
        pods of this size (``Offerings.bar``), and often less than a new node when the claim
        must move to a bigger target (not in pools with minValues, whose check follows the
        target; under limits only while the bigger target fits what they leave, and the claim's
        reservation moves with it). The newest claims of each
        lane are looked at first, ``CHEAP_VISITS`` in all.
        """
        cpu, mem, eph, ext = item.cpu, item.mem, item.eph, item.ext
        dead = shape.dead
        offers = self.offers
        alone: dict[int, float] = {}
        found: list[tuple[float, float, int, NewClaim, Fit | None]] = []
        budget = CHEAP_VISITS
        checks = CHEAP_CHECKS
        for key, lane in self.lanes.items():
            index = key[0]
            entry = self.pools[index]
            fit = entry.fits[key[1]]
            cost = alone.get(index)
            if cost is None:
                cost = alone[index] = offers.alone(item, entry)
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
                step = b.step(item, cost, grow, offers)
                if step is None:
                    continue
                if grow and not entry.limit_ok(step[1], b.reserved):
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
                b.grow(grown_fit, self.lanes)
            code = self._try_claim(item, shape, b, zones)
            if code is _OK:
                return True
            if code is _PERMANENT:
                dead.add(b.serial)
        return False

    @staticmethod
    def _compact(shape: Shape) -> None:
        dead = shape.dead
        shape.candidates = [b for b in shape.candidates if not b.closed and b.serial not in dead]
        for key, lane in shape.lanes.items():
            shape.lanes[key] = [
                b
                for b in lane
                if not b.closed and b.serial not in dead and b.fit.type.name == key[1]
            ]
        dead.clear()

    def run(self) -> SimulationResult:
        items = self.backlog.items
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
        if self.one_claim:
            self._into_one()
        self._spread_zones()
        return self._result(failed)

    def _repack(self, entry: Pool) -> None:
        mine = [b for b in self.claims if b.pool is entry and b.free and b.pods_placed]
        fresh = repack(
            entry,
            mine,
            self.offers,
            name=lambda: self._next_name(entry),
            serial=len(self.existing) + len(self.claims),
        )
        if fresh is not None:
            gone = {id(b) for b in mine}
            self.claims = [b for b in self.claims if id(b) not in gone] + fresh
            mine = fresh
        fewer = coalesce(entry, mine, self.offers)
        if fewer is not None:
            gone = {id(b) for b in mine}
            self.claims = [b for b in self.claims if id(b) not in gone] + fewer

    def _spread_zones(self) -> None:
        """Pin each claim free to launch in several zones to the one where its pool has the
        fewest nodes, among those where it costs the least: at equal price, spread for
        availability rather than all in the first zone by name."""
        counts: dict[tuple[str, str], int] = {}
        for node in self.existing:
            pool = node.labels.get(NODEPOOL)
            if pool is not None and node.zones:
                counts[(pool, node.zones[0])] = counts.get((pool, node.zones[0]), 0) + 1
        for b in self.claims:
            if not b.pods_placed:
                continue
            pool = b.pool.pool.name
            zreq = b.reqs.find(ZONE)
            pinned = zreq.single_value() if zreq is not None else None
            if pinned is None:
                cheapest = next(b.options(self.offers))[0].type
                by_zone = {}
                for zone in launch_zones(b.reqs, cheapest):
                    offering = cheapest.cheapest(b.reqs.add(Requirement.any_of(ZONE, (zone,))))
                    if offering is not None:
                        by_zone[zone] = offering.price
                if not by_zone:
                    continue
                low = min(by_zone.values()) * (1 + PRICE_SLACK)
                pinned = min(
                    (z for z, price in by_zone.items() if price <= low),
                    key=lambda z: (counts.get((pool, z), 0), z),
                )
                b.reqs = b.reqs.add(Requirement.any_of(ZONE, (pinned,)))
            counts[(pool, pinned)] = counts.get((pool, pinned), 0) + 1

    def _into_one(self) -> None:
        opened = [b for b in self.claims if b.pods_placed]
        if len(opened) < 2 or len({id(b.pool) for b in opened}) > 1:
            return
        if not all(b.free for b in opened):
            return
        one = into_one(
            opened[0].pool, opened, self.offers, serial=len(self.existing) + len(self.claims)
        )
        if one is not None:
            self.claims = [one]

    def _result(self, failed: dict[str, str]) -> SimulationResult:
        placed: list[tuple[Pod, str]] = []
        claims: list[NodeClaimPlan] = []
        done: set[int] = set()
        for node in self.existing:
            placed.extend((p, node.name) for p in node.pods_placed)
            done.update(id(p) for p in node.pods_placed)
        for b in self.claims:
            if b.pods_placed:
                claims.append(b.finalize(self.offers))
                done.update(id(p) for p in b.pods_placed)
        queue = self.backlog.queue
        unschedulable = [(p, failed[p.uid or p.key]) for p in queue if id(p) not in done]
        return SimulationResult(tuple(placed), tuple(claims), tuple(unschedulable))


def simulate(
    pods: Sequence[Pod],
    *,
    nodepools: Sequence[NodePool],
    catalog: Catalog,
    nodes: Sequence[NodeView] = (),
    daemonsets: Sequence[Pod] = (),
    one_claim: bool = False,
) -> SimulationResult:
    """Schedule ``pods`` onto ``nodes`` and new NodeClaims from ``nodepools`` (see the package
    docstring). ``one_claim``: the caller can launch one new claim only (a consolidation's
    replacement), so several claims holding only free pods of one pool become one when a type
    of the pool holds them all."""
    scheduler = Scheduler(
        nodepools=nodepools,
        catalog=catalog,
        nodes=nodes,
        daemonsets=daemonsets,
        pending=pods,
        one_claim=one_claim,
    )
    return scheduler.run()
