"""The cheapest packing of a small batch, by brute force: the oracle the cost tests compare the
simulation with. Every partition of the pods, each block on its cheapest type that holds it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from provisioner import Catalog, InstanceType, Pod

from .builders import ON_DEMAND, nodepool, types_in

CATALOG = Catalog.aws()
GRAVITON = tuple(f"{f}6g.{s}" for s in ("large", "xlarge", "2xlarge") for f in ("c", "m", "r"))


def partitions(items: Sequence[int]) -> Iterator[list[list[int]]]:
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in partitions(rest):
        for i in range(len(part)):
            yield [*part[:i], [first, *part[i]], *part[i + 1 :]]
        yield [[first], *part]


def priced_types(names: Sequence[str]) -> list[tuple[float, InstanceType]]:
    pool = nodepool(requirements=[ON_DEMAND, types_in(*names)])
    reqs = pool.template_requirements()
    out = []
    for itype in CATALOG.instance_types():
        offering = itype.cheapest(reqs)
        if itype.name in names and offering is not None:
            out.append((offering.price, itype))
    return sorted(out, key=lambda t: (t[0], t[1].name))


def holds(itype: InstanceType, group: Sequence[Pod]) -> bool:
    alloc = itype.allocatable
    cpu = sum(p.requests.cpu for p in group)
    mem = sum(p.requests.memory for p in group)
    return cpu <= alloc.cpu and mem <= alloc.memory and len(group) <= alloc.pods


def brute_force(batch: Sequence[Pod], names: Sequence[str]) -> float:
    """The cheapest packing: every partition of the pods, each block on its cheapest type."""
    priced = priced_types(names)
    best = float("inf")
    for part in partitions(list(range(len(batch)))):
        total = 0.0
        for block in part:
            group = [batch[i] for i in block]
            total += next((p for p, t in priced if holds(t, group)), float("inf"))
            if total >= best:
                break
        best = min(best, total)
    return best
