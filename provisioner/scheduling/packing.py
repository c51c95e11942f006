"""A second packing of interchangeable pods, bin by bin, for the repack pass (``repack``).

Owns ``Box``, ``Size``, ``unit_prices`` and ``cover``. The scheduler packs pod by pod, in queue
order: a new claim's type is chosen for the pod that opens it, and later pods fill whatever
claims are open. For pods with
nothing that ties them to a node (no topology, affinity, host ports or node requirements of
their own) the order does not matter, and packing one *node* at a time does better:

1. Value each pod at ``a * cpu + b * memory``, where (a, b) are per-unit prices: the duals of the
   fractional optimum (two types mixed so that both cpu and memory bind), or plain shares of the
   totals. Sort the pods by value, largest first.
2. Open a node for the largest pod left. Of the types that hold it, try the ``width`` that are
   cheapest per unit of value they could absorb (capacity capped at what is left to place); fill
   each with the largest pods that still fit, shrink it to the cheapest type that holds what it
   got, and keep the one with the lowest price per unit of value packed.
3. Repeat until every pod is placed.

It is pure and must know nothing of Kubernetes, pools or claims: sizes in, groups of indices
out. The caller keeps this packing only when it is cheaper than its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import islice

__all__ = ["MISSES", "WIDTH", "Box", "Size", "cover", "unit_prices"]

WIDTH = 12
"""Types tried per node: past the dozen cheapest per unit of value, a type rarely wins, and
each one tried costs a fill scan."""
MISSES = 256
"""A fill scan stops after this many pods in a row that do not fit: bounds the work per node
(pods are sorted by value, so a long run of misses means the rest are too big as well)."""


@dataclass(frozen=True, slots=True)
class Size:
    """What one pod needs (``pods: 1`` is implied)."""

    cpu: int
    memory: int
    ephemeral_storage: int = 0
    extended: Mapping[str, int] | None = None


@dataclass(frozen=True, slots=True)
class Box:
    """An instance type as the packer sees it: room for pods and the price of one."""

    price: float
    cpu: int
    memory: int
    pods: int
    ephemeral_storage: int
    extended: Mapping[str, int] | None = None

    def holds(self, cpu: int, memory: int, pods: int, eph: int, ext: Mapping[str, int]) -> bool:
        if cpu > self.cpu or memory > self.memory or pods > self.pods:
            return False
        if eph > self.ephemeral_storage:
            return False
        room = self.extended or {}
        return all(room.get(k, 0) >= v for k, v in ext.items())


def unit_prices(boxes: Sequence[Box], cpu: int, memory: int) -> list[tuple[float, float]]:
    """Candidate (per-millicore, per-byte) prices to value pods with, most informed first.

    First the duals of the cheapest fractional mix covering ``cpu`` and ``memory`` (when two
    types mix with both resources binding), then each resource priced by its share of the
    totals (which needs nothing from the catalog).
    """
    out: list[tuple[float, float]] = []
    points = [
        (b.cpu / b.price, b.memory / b.price, b)
        for b in boxes
        if b.price > 0 and b.cpu > 0 and b.memory > 0
    ]
    frontier = [
        p
        for p in points
        if not any(q[0] >= p[0] and q[1] >= p[1] and (q[0], q[1]) != (p[0], p[1]) for q in points)
    ]
    best, pair = math.inf, None
    for i, (a1, m1, b1) in enumerate(frontier):
        for a2, m2, b2 in frontier[i + 1 :]:
            denom = cpu * (m1 - m2) - memory * (a1 - a2)
            if denom == 0:
                continue
            w = (memory * a2 - cpu * m2) / denom
            if 0 < w < 1:
                ca, ma = w * a1 + (1 - w) * a2, w * m1 + (1 - w) * m2
                cost = max(cpu / ca, memory / ma)
                if cost < best:
                    best, pair = cost, (b1, b2)
    if pair is not None:
        b1, b2 = pair
        det = b1.cpu * b2.memory - b2.cpu * b1.memory
        if det:
            a = (b1.price * b2.memory - b2.price * b1.memory) / det
            b = (b1.cpu * b2.price - b2.cpu * b1.price) / det
            if a > 0 and b > 0:
                out.append((a, b))
    out.append((0.5 / max(cpu, 1), 0.5 / max(memory, 1)))
    return out


def cover(
    sizes: Sequence[Size],
    boxes: Sequence[Box],
    unit: tuple[float, float],
    *,
    width: int = WIDTH,
    misses: int = MISSES,
) -> tuple[float, list[tuple[int, list[int]]]] | None:
    """Pack every size; returns (total price, [(box index, size indices)]) or None if some size
    fits no box. ``boxes`` must be cheapest first (the shrink takes the first that holds).

    A fill takes pods largest first, then tops up with the smallest; each scan gives up after
    ``misses`` pods in a row that do not fit, so the work per node is bounded.
    """
    a, b = unit
    order = sorted(range(len(sizes)), key=lambda i: (-(a * sizes[i].cpu + b * sizes[i].memory), i))
    cpus = [sizes[i].cpu for i in order]
    mems = [sizes[i].memory for i in order]
    ephs = [sizes[i].ephemeral_storage for i in order]
    exts = [dict(sizes[i].extended or {}) for i in order]
    n = len(order)
    dead = [False] * n
    alive = list(range(n))
    left = n
    ranking = sorted(
        range(len(boxes)),
        key=lambda i: (
            -(a * boxes[i].cpu + b * boxes[i].memory) / boxes[i].price
            if boxes[i].price > 0
            else -math.inf,
            i,
        ),
    )
    min_cpu, min_mem = min(cpus, default=0), min(mems, default=0)
    total = 0.0
    bins: list[tuple[int, list[int]]] = []
    head = 0
    while left:
        if left * 2 < len(alive):
            alive = [j for j in alive if not dead[j]]
            head = 0
            min_cpu, min_mem = min(cpus[j] for j in alive), min(mems[j] for j in alive)
        while dead[alive[head]]:
            head += 1
        first = alive[head]
        c0, m0, e0, x0 = cpus[first], mems[first], ephs[first], exts[first]
        candidates = list(islice((i for i in ranking if boxes[i].holds(c0, m0, 1, e0, x0)), width))
        if not candidates:
            return None
        best: tuple[float, int, list[int]] | None = None
        for index in candidates:
            box = boxes[index]
            cap_cpu, cap_mem, cap_pods, cap_eph = (
                box.cpu,
                box.memory,
                box.pods,
                box.ephemeral_storage,
            )
            room_ext = box.extended or {}
            cpu, mem, pods, eph = c0, m0, 1, e0
            ext = dict(x0)
            taken = [first]
            end = len(alive)
            for phase in (0, 1):
                # Largest first from the head, then the smallest from the tail up to where
                # the head scan stopped.
                span = range(head + 1, end) if phase == 0 else range(len(alive) - 1, end - 1, -1)
                missed = 0
                for pos in span:
                    if pods >= cap_pods or missed >= misses:
                        break
                    if cap_cpu - cpu < min_cpu or cap_mem - mem < min_mem:
                        break
                    j = alive[pos]
                    if phase == 0:
                        end = pos + 1
                    if dead[j]:
                        continue
                    cj, mj, ej, xj = cpus[j], mems[j], ephs[j], exts[j]
                    if cpu + cj > cap_cpu or mem + mj > cap_mem or eph + ej > cap_eph:
                        missed += 1
                        continue
                    if xj and any(room_ext.get(k, 0) < ext.get(k, 0) + v for k, v in xj.items()):
                        missed += 1
                        continue
                    for k, v in xj.items():
                        ext[k] = ext.get(k, 0) + v
                    cpu, mem, pods, eph = cpu + cj, mem + mj, pods + 1, eph + ej
                    taken.append(j)
                    missed = 0
                if phase == 0 and end == len(alive):
                    break
            shrunk = next(i for i, s in enumerate(boxes) if s.holds(cpu, mem, pods, eph, ext))
            value = a * cpu + b * mem
            score = boxes[shrunk].price / value if value > 0 else math.inf
            if best is None or score < best[0]:
                best = (score, shrunk, taken)
        assert best is not None
        _, shrunk, taken = best
        total += boxes[shrunk].price
        bins.append((shrunk, [order[j] for j in taken]))
        for j in taken:
            dead[j] = True
        left -= len(taken)
    return total, bins
