"""The repack pass: a pool's claims holding only free pods, packed again node by node.

Owns ``repack``, ``coalesce`` and ``into_one``. ``repack``: after the pod-by-pod pass, the
claims of one pool that hold only *free* pods (see ``Shape.free_in``: moving them changes
nothing but cost) are packed again with ``packing``, and the new claims are returned when they
cost less in total.
Under a pool's limits the new claims must fit what the limits leave once the old claims'
reservations are given back (and then reserve in their place). It must not touch pools with
minValues (the pod-by-pod pass is what checks those), claims mixing free and constrained pods,
existing nodes, or topology counts.

``coalesce``: two such claims become one whenever the cheapest type holding both costs no
more than the two (fewer, larger nodes at equal $/h).

``into_one`` is for a caller that can launch one new claim only (a consolidation's
replacement): several claims of one pool holding only free pods become one, the cheapest type
that holds them all, when some type does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from provisioner.model import Pod
from provisioner.requirements import Requirements
from provisioner.resources import Resources
from provisioner.scheduling.claims import PRICE_SLACK, NewClaim
from provisioner.scheduling.offerings import Offerings, holding
from provisioner.scheduling.packing import MISSES, WIDTH, Box, Size, cover, unit_prices
from provisioner.scheduling.pools import Fit, Pool

__all__ = ["BUDGET", "MERGE_TRIES", "coalesce", "into_one", "repack"]

BUDGET = 4_000_000
"""Fill steps (estimated: claims x types tried x pods scanned per node) a repack may take.
Its work grows with nodes x pods scanned per node: many small nodes of a big batch (20k pods on
burstable types holding a pod or two each) would cost seconds for ~0.1 % measured."""


def repack(
    entry: Pool,
    claims: Sequence[NewClaim],
    offers: Offerings,
    *,
    name: Callable[[], str],
    serial: int,
) -> list[NewClaim] | None:
    """Claims replacing ``claims`` (the pool's own, all free) when that costs less, else None.

    The replacements reuse the old names first; ``name`` makes the rest. ``serial`` is the
    first free serial.
    """
    if entry.min_values or not claims:
        return None
    pods = [p for b in claims for p in b.pods_placed]
    if len(claims) * WIDTH * min(MISSES, len(pods)) > BUDGET:
        return None
    # What a pod with no requirements of its own gets from the pool (claims may have
    # added a zone since, when their target was offered in one zone only).
    reason, reqs = offers.admit(entry.reqs, Requirements())
    if reason is not None:
        return None
    frontier = offers.frontier(entry, reqs)
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
    now = sum(b.finalize(offers).price for b in claims)
    best: tuple[float, list[tuple[int, list[int]]]] | None = None
    total_cpu, total_mem = sum(s.cpu for s in sizes), sum(s.memory for s in sizes)
    for unit in unit_prices(boxes, total_cpu, total_mem):
        packed = cover(sizes, boxes, unit)
        if packed is not None and (best is None or packed[0] < best[0]):
            best = packed
    if best is None or best[0] >= now * (1 - PRICE_SLACK):
        return None
    targets = [frontier[box][0] for box, _ in best[1]]
    if not entry.limits_hold(targets, [b.reserved for b in claims]):
        return None
    groups = [(frontier[box][0], [pods[i] for i in members]) for box, members in best[1]]
    return _replace(entry, claims, reqs, groups, name=name, serial=serial)


def into_one(
    entry: Pool, claims: Sequence[NewClaim], offers: Offerings, *, serial: int
) -> NewClaim | None:
    """One claim holding every pod of ``claims`` (the pool's own, all free), as the cheapest
    type that holds them together, or None when no type of the pool does (or its limits do
    not leave room). Whatever it costs against ``claims``: the caller can launch only one."""
    if entry.min_values or len(claims) < 2:
        return None
    reason, reqs = offers.admit(entry.reqs, Requirements())
    if reason is not None:
        return None
    pods = [p for b in claims for p in b.pods_placed]
    total = Resources()
    for p in pods:
        total += p.requests
    ext = dict(total.extended)
    best: tuple[float, Fit] | None = None
    for fit, price in offers.frontier(entry, reqs):
        box = Box(price, fit.cpu, fit.mem, fit.pods, fit.eph, fit.ext or None)
        if box.holds(total.cpu, total.memory, len(pods), total.ephemeral_storage, ext) and (
            best is None or price < best[0]
        ):
            best = (price, fit)
    if best is None or not entry.limits_hold([best[1]], [b.reserved for b in claims]):
        return None
    (claim,) = _replace(entry, claims, reqs, [(best[1], pods)], name=lambda: "", serial=serial)
    return claim


def _replace(
    entry: Pool,
    claims: Sequence[NewClaim],
    reqs: Requirements,
    groups: Sequence[tuple[Fit, Sequence[Pod]]],
    *,
    name: Callable[[], str],
    serial: int,
) -> list[NewClaim]:
    """New claims of ``entry``, one per (target, pods) group, in place of ``claims``: their
    reservations given back, their names reused first."""
    for b in claims:
        entry.release(b.reserved)
        b.reserved = {}
    names = [b.name for b in claims]
    fresh: list[NewClaim] = []
    for index, (fit, members) in enumerate(groups):
        claim_name = names[index] if index < len(names) else name()
        claim = NewClaim(claim_name, serial + index, entry, reqs, fit)
        claim.reserved = entry.reserve({}, fit)
        claim.pods_placed = list(members)
        used = Resources()
        for p in claim.pods_placed:
            used += p.requests + Resources(pods=1)
        claim.used = used
        fresh.append(claim)
    return fresh


MERGE_TRIES = 32
"""Partners tried per claim by ``coalesce``: bounds its work at claims x 32 frontier scans, so a
pass with thousands of claims pays milliseconds for it."""


def coalesce(entry: Pool, claims: Sequence[NewClaim], offers: Offerings) -> list[NewClaim] | None:
    """Fewer, larger claims for the same price: two of ``claims`` (the pool's own, all free)
    become one when the cheapest type holding both costs no more than the two together.

    At equal $/h one node beats two (one daemonset overhead, one node to drain, less churn),
    and under limits its capacity counts once: the merged claim must fit what the two
    reservations leave. None when nothing merged (and for pools with minValues, whose check
    follows the pod-by-pod pass).
    """
    if entry.min_values or len(claims) < 2:
        return None
    # Smallest first: two small claims are the likeliest to share one node.
    alive = sorted(claims, key=lambda b: (b.used.cpu, b.used.memory, b.serial))
    prices = {id(b): next(b.options(offers))[1] for b in alive}
    merged = False
    i = 0
    while i < len(alive):
        a = alive[i]
        frontier = offers.frontier(entry, a.reqs)
        partner = None
        for b in alive[i + 1 : i + 1 + MERGE_TRIES]:
            if b.reqs != a.reqs:
                continue
            u = a.used + b.used
            budget = (prices[id(a)] + prices[id(b)]) * (1 + PRICE_SLACK)
            found = holding(
                frontier, u.cpu, u.memory, u.pods, u.ephemeral_storage, u.extended, 0, budget
            )
            if found is None:
                continue
            fit, price = frontier[found[0]]
            if entry.limits_hold([fit], [a.reserved, b.reserved]):
                partner = (b, fit, price)
                break
        if partner is None:
            i += 1
            continue
        b, fit, price = partner
        entry.release(a.reserved)
        entry.release(b.reserved)
        claim = NewClaim(a.name, a.serial, entry, a.reqs, fit)
        claim.reserved = entry.reserve({}, fit)
        claim.pods_placed = [*a.pods_placed, *b.pods_placed]
        claim.used = a.used + b.used
        claim.zones = a.zones
        prices[id(claim)] = price
        alive[i] = claim
        alive.remove(b)
        merged = True  # and try the merged claim again: it may take a third
    return alive if merged else None
