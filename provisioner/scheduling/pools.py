"""NodePools as the pass sees them: their instance types, daemonsets and limits.

Owns ``Pool`` (a NodePool with its compatible types, the daemonsets that land on its nodes and
what its limits leave), ``Fit`` (an instance type's room after that pool's daemonsets, and its
cheapest price there), ``pools`` (the pools in the order claims are tried) and
``offered_zones``. It must not rank or price types for a pod (``offerings``) or hold pods.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from provisioner.catalog import Catalog, InstanceType
from provisioner.labels import WELL_KNOWN_LABELS, ZONE
from provisioner.model import PREFER_NO_SCHEDULE, HostPort, NodePool, NodeView, Pod, untolerated
from provisioner.requirements import Requirements
from provisioner.resources import Resources
from provisioner.scheduling.queue import Item

__all__ = ["Fit", "Pool", "daemon_lands", "offered_zones", "pools", "unpack"]


def unpack(room: Resources) -> tuple[int, int, int, int, dict[str, int]]:
    """(cpu, memory, pods, ephemeral storage, extended) of ``room``, as the hot loops read
    them: plain attributes, not a ``Resources`` to add up."""
    return room.cpu, room.memory, room.pods, room.ephemeral_storage, dict(room.extended)


class Fit:
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
        self.type = itype
        self.cpu, self.mem, self.pods, self.eph, self.ext = unpack(itype.allocatable - overhead)
        self.overhead = overhead
        self.ports = ports
        self.cap = itype.capacity
        self.pod_price = pool_price
        """Cheapest offering the pool's own requirements admit (inf: none)."""

    def holds(self, item: Item) -> bool:
        """Room for ``item`` on an empty node of this type."""
        if item.cpu > self.cpu or item.mem > self.mem or self.pods < 1 or item.eph > self.eph:
            return False
        return all(self.ext.get(k, 0) >= v for k, v in item.ext.items())

    def holds_with(self, item: Item, used: Resources) -> bool:
        """Room for ``item`` next to ``used``."""
        total = used + item.requests
        if total.cpu > self.cpu or total.memory > self.mem or total.pods > self.pods:
            return False
        if total.ephemeral_storage > self.eph:
            return False
        return all(self.ext.get(k, 0) >= v for k, v in total.extended)


class Pool:
    __slots__ = ("daemons", "fits", "index", "min_values", "pool", "remaining", "reqs", "types")

    def __init__(self, index: int, pool: NodePool, types: list[InstanceType]) -> None:
        self.index = index
        self.pool = pool
        self.reqs = pool.template_requirements()
        self.types = types
        self.fits: dict[str, Fit] = {}
        self.daemons: list[Pod] = []
        self.remaining: dict[str, int] | None = None
        """What the limits leave (None: no limits), after nodes and claims reserved theirs."""
        self.min_values = any(r.min_values for r in self.reqs.values())

    @property
    def growable(self) -> bool:
        """Whether a claim may move to a bigger target in the pass: not with minValues to keep
        (that check follows the target). Under limits it may, when ``limit_ok`` says the bigger
        target still fits what the limits leave; its reservation then moves with it."""
        return not self.min_values

    def start_limits(self, nodes: Sequence[NodeView]) -> None:
        """Limits minus the capacity of the pool's nodes and in-flight claims."""
        pool = self.pool
        if pool.limits is None:
            return
        remaining = {name: pool.limits.get(name) for name in pool.limit_names}
        for node in nodes:
            if node.nodepool == pool.name:
                for name in remaining:
                    remaining[name] -= 1 if name == "nodes" else node.capacity.get(name)
        self.remaining = remaining

    def limit_ok(self, fit: Fit, released: Mapping[str, int]) -> bool:
        """Whether ``fit`` stays in the limits once ``released`` (a claim's old reservation)
        is given back."""
        if self.remaining is None:
            return True
        for name, left in self.remaining.items():
            want = 1 if name == "nodes" else fit.cap.get(name)
            if want > left + released.get(name, 0):
                return False
        return True

    def limits_hold(self, fits: Sequence[Fit], released: Sequence[Mapping[str, int]]) -> bool:
        """Whether claims targeting ``fits`` stay in the limits once the reservations
        ``released`` (of the claims they replace) are given back."""
        if self.remaining is None:
            return True
        for name, left in self.remaining.items():
            want = sum(1 if name == "nodes" else fit.cap.get(name) for fit in fits)
            if want > left + sum(held.get(name, 0) for held in released):
                return False
        return True

    def release(self, held: Mapping[str, int]) -> None:
        """Give a claim's reservation ``held`` back to what the limits leave."""
        if self.remaining is not None:
            for name in self.remaining:
                self.remaining[name] += held.get(name, 0)

    def reserve(self, held: Mapping[str, int], fit: Fit) -> dict[str, int]:
        """Swap a claim's reservation ``held`` for ``fit``'s capacity; returns the new one."""
        if self.remaining is None:
            return dict(held)
        for name in self.remaining:
            self.remaining[name] += held.get(name, 0)
        reserved = {n: 1 if n == "nodes" else fit.cap.get(n) for n in self.remaining}
        for name, amount in reserved.items():
            self.remaining[name] -= amount
        return reserved


def daemon_lands(daemon: Pod, entry: Pool, itype: InstanceType | None) -> bool:
    """Whether a daemonset pod runs on the pool's nodes (of ``itype``, when given)."""
    hard = tuple(t for t in entry.pool.taints if t.effect != PREFER_NO_SCHEDULE)
    if untolerated(hard, daemon.tolerations) is not None:
        return False
    for term in daemon.required_terms:
        if entry.reqs.admit(term, undefined_ok=WELL_KNOWN_LABELS) is not None:
            continue
        if itype is None or itype.requirements.conflict(term) is None:
            return True
    return False


_ALLOWED: dict[tuple[int, Requirements], tuple[tuple[InstanceType, ...], list[InstanceType]]] = {}
"""(id of a catalog's type tuple, pool requirements) -> (that tuple, the types they allow).
A disruption pass simulates hundreds of times over the same pools; the tuple is kept so its
id cannot be reused while remembered."""
_ALLOWED_MAX = 256


def _allowed(types: tuple[InstanceType, ...], reqs: Requirements) -> list[InstanceType]:
    """The types ``reqs`` allow, as one list shared by every simulation over the same catalog
    and pool (never mutated: ``offerings`` keys its own cross-simulation memo on it)."""
    key = (id(types), reqs)
    hit = _ALLOWED.get(key)
    if hit is not None and hit[0] is types:
        return hit[1]
    allowed = [t for t in types if t.requirements.conflict(reqs) is None]
    if len(_ALLOWED) >= _ALLOWED_MAX:
        _ALLOWED.clear()
    _ALLOWED[key] = (types, allowed)
    return allowed


def pools(nodepools: Sequence[NodePool], catalog: Catalog, daemonsets: Sequence[Pod]) -> list[Pool]:
    """The pools in the order new claims are tried: weight desc, then name."""
    ordered = sorted(nodepools, key=lambda p: (-p.weight, p.name))
    out: list[Pool] = []
    for i, pool in enumerate(ordered):
        reqs = pool.template_requirements()
        types = _allowed(catalog.instance_types(pool.kubelet), reqs)
        entry = Pool(i, pool, types)
        entry.daemons = [d for d in daemonsets if daemon_lands(d, entry, None)]
        out.append(entry)
    return out


def offered_zones(entries: Iterable[Pool]) -> set[str]:
    """Zones of every available offering the pools' types and requirements admit."""
    zones: set[str] = set()
    for entry in entries:
        zreq = entry.reqs.get(ZONE)
        for t in entry.types:
            for o in t.offerings:
                if o.available and (zreq is None or zreq.has(o.zone)):
                    zones.add(o.zone)
    return zones
