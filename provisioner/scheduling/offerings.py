"""Offerings and pricing: which of a pool's instance types are worth a claim, and at what price.

Owns ``Offerings`` (the cached views the scheduler and claims ask: compatible types, cheapest
first, the price-resource frontier, the ranking of targets for a pod's size, the price bar a
claim must meet, minValues), and the small type-and-offering tests ``holding``,
``launch_zones``, ``ports_conflict``. It must not place pods or keep per-claim state: claims
and the scheduler call in with a pool (``pools``) and requirements.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from provisioner.catalog import InstanceType
from provisioner.labels import CAPACITY_TYPE, WELL_KNOWN_LABELS, ZONE
from provisioner.model import HostPort
from provisioner.requirements import Requirements
from provisioner.resources import Resources
from provisioner.scheduling.pools import Fit, Pool, daemon_lands
from provisioner.scheduling.queue import Backlog, Item

__all__ = ["Offerings", "holding", "launch_zones", "ports_conflict"]

TOLERANCE = 0.10
"""How much dearer per pod of a size than the best target a claim's target may be for that pod
to fill it (``Offerings.bar``): a little slack lets near-ties share claims, a lot would let a
pod fill a claim whose type suits other sizes and cost more than a claim of its own."""


def ports_conflict(wanted: Sequence[HostPort], used: Sequence[HostPort]) -> HostPort | None:
    for port in wanted:
        if any(port.conflicts(u) for u in used):
            return port
    return None


def launch_zones(reqs: Requirements, itype: InstanceType) -> tuple[str, ...]:
    """Zones a claim of ``itype`` under ``reqs`` could launch in (available offerings)."""
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


def holding(
    frontier: Sequence[tuple[Fit, float]],
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


_COMPATIBLE: dict[tuple[int, Requirements], tuple[Sequence[InstanceType], list[InstanceType]]] = {}
"""(id of a pool's type list, requirements) -> (that list, the types in it with no conflict and
an available offering the requirements admit). The list is shared by every simulation over
the same catalog and pool (``pools``), and types are immutable, so the answer holds across
simulations: a disruption pass asks the same few requirements hundreds of times. The list is
kept so its id cannot be reused while remembered."""
_COMPATIBLE_MAX = 1024


def _compatible_types(types: Sequence[InstanceType], reqs: Requirements) -> list[InstanceType]:
    key = (id(types), reqs)
    hit = _COMPATIBLE.get(key)
    if hit is not None and hit[0] is types:
        return hit[1]
    found = [
        t for t in types if t.requirements.conflict(reqs) is None and t.cheapest(reqs) is not None
    ]
    if len(_COMPATIBLE) >= _COMPATIBLE_MAX:
        _COMPATIBLE.clear()
    _COMPATIBLE[key] = (types, found)
    return found


class Offerings:
    """Cached answers about types and prices, per pool and requirements."""

    def __init__(self, backlog: Backlog) -> None:
        self.backlog = backlog
        """What is still queued: the target ranking scores types by pods of a size it holds,
        capped at the pods left."""
        self.admit_cache: dict[
            tuple[Requirements, Requirements], tuple[str | None, Requirements]
        ] = {}
        self.compat_cache: dict[tuple[int, Requirements], list[Fit]] = {}
        self.rank_cache: dict[tuple[object, ...], list[tuple[Fit, float, float]]] = {}
        self.frontier_cache: dict[tuple[int, Requirements], list[tuple[Fit, float]]] = {}
        self.priced_cache: dict[tuple[int, Requirements], list[tuple[Fit, float]]] = {}
        self.target_ok: dict[tuple[str, Requirements], bool] = {}

    @staticmethod
    def fit(entry: Pool, itype: InstanceType) -> Fit:
        fit = entry.fits.get(itype.name)
        if fit is None:
            overhead = Resources()
            ports: list[HostPort] = []
            for daemon in entry.daemons:
                if daemon_lands(daemon, entry, itype):
                    overhead += daemon.requests + Resources(pods=1)
                    ports.extend(daemon.host_ports)
            offering = itype.cheapest(entry.reqs)
            price = offering.price if offering is not None else math.inf
            fit = Fit(itype, overhead, tuple(ports), price)
            entry.fits[itype.name] = fit
        return fit

    def admit(self, offered: Requirements, wanted: Requirements) -> tuple[str | None, Requirements]:
        """Why ``offered`` (a pool's or claim's requirements) cannot take ``wanted``, or None
        and the narrowed requirements."""
        key = (offered, wanted)
        hit = self.admit_cache.get(key)
        if hit is None:
            reason = offered.admit(wanted, undefined_ok=WELL_KNOWN_LABELS)
            hit = (reason, offered if reason else offered.intersect(wanted))
            self.admit_cache[key] = hit
        return hit

    def type_ok(self, itype: InstanceType, reqs: Requirements) -> bool:
        key = (itype.name, reqs)
        hit = self.target_ok.get(key)
        if hit is None:
            hit = itype.requirements.conflict(reqs) is None and itype.cheapest(reqs) is not None
            self.target_ok[key] = hit
        return hit

    def compatible(self, entry: Pool, reqs: Requirements) -> list[Fit]:
        key = (entry.index, reqs)
        hit = self.compat_cache.get(key)
        if hit is None:
            hit = [self.fit(entry, t) for t in _compatible_types(entry.types, reqs)]
            self.compat_cache[key] = hit
        return hit

    def priced(self, entry: Pool, reqs: Requirements) -> list[tuple[Fit, float]]:
        """Compatible types with their cheapest admitted offering price, cheapest first."""
        key = (entry.index, reqs)
        hit = self.priced_cache.get(key)
        if hit is None:
            priced = []
            for fit in self.compatible(entry, reqs):
                offering = fit.type.cheapest(reqs)
                assert offering is not None  # compatible keeps only types with one
                priced.append((offering.price, fit.type.name, fit))
            priced.sort(key=lambda p: (p[0], p[1]))
            hit = [(fit, price) for price, _, fit in priced]
            self.priced_cache[key] = hit
        return hit

    def frontier(self, entry: Pool, reqs: Requirements) -> list[tuple[Fit, float]]:
        """Compatible types no other compatible type beats on price *and* every resource.

        A dominated type can never be the better target, so the ranking only scores the
        frontier. Pools with limits keep every type: a bigger dominating type may not fit the
        remaining limits when the dominated one does.
        """
        key = (entry.index, reqs)
        hit = self.frontier_cache.get(key)
        if hit is not None:
            return hit
        priced = self.priced(entry, reqs)
        if entry.remaining is not None:
            hit = priced
        else:
            kept: list[tuple[Fit, float]] = []
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

    def ranked(self, entry: Pool, reqs: Requirements, item: Item) -> list[tuple[Fit, float, float]]:
        """Candidate targets for a claim opened by ``item``, best first.

        A type's score is its price over how many pods of ``item``'s size it holds (whole pods,
        at most the number of pods still queued): the price per pod of filling it with pods like
        this one. So a pod goes to the type whose shape suits it (cpu-heavy pods to cpu-cheap
        types, memory-heavy to memory-cheap), a type that wastes a fraction of a pod pays for
        it, and near the end of the queue a type bigger than what is left does too. Sizes are
        bucketed (5 % steps, rounded up) so the ranking is cached and computed rarely.
        """
        cpu, mem, left = self.backlog.sizes(item)
        key = (entry.index, reqs, cpu, mem, left, item.eph, tuple(item.ext.items()))
        hit = self.rank_cache.get(key)
        if hit is None:
            scored = []
            icpu, imem, ieph, iext = item.cpu, item.mem, item.eph, item.ext
            for fit, price in self.frontier(entry, reqs):
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

    def bar(self, item: Item, entry: Pool) -> float:
        """The most a claim of ``entry`` may cost per pod of ``item``'s size to be filled.

        Filling a claim whose type is expensive *for pods like this one* can cost more than
        opening a claim of the type that suits the pod, so a claim opened in this pass
        qualifies only when its target's price per pod of this size is within ``TOLERANCE`` of
        the best target's (see ``ranked``).
        """
        ranked = self.ranked(entry, entry.reqs, item)
        return ranked[0][2] * (1 + TOLERANCE) if ranked else math.inf

    def alone(self, item: Item, entry: Pool) -> float:
        """USD/h of the cheapest node of ``entry`` that holds ``item`` by itself."""
        r = item.requests
        frontier = self.frontier(entry, entry.reqs)
        found = holding(frontier, r.cpu, r.memory, 1, r.ephemeral_storage, r.extended)
        return found[1] if found is not None else math.inf

    def min_values_short(self, entry: Pool, reqs: Requirements, used: Resources) -> str | None:
        """Why the types that would still hold ``used`` keep too few distinct values for a
        requirement with minValues (the Strict policy), or None."""
        wanted = [r for r in reqs.values() if r.min_values]
        if not wanted:
            return None
        fits = [
            f for f in self.compatible(entry, reqs) if (used + f.overhead).fits(f.type.allocatable)
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
