"""NodeClaims opened in this pass: packed against a target type, narrowed as pods join.

Owns ``NewClaim``: its pool, requirements and target (``Fit``), the reservation it holds
against the pool's limits, ``check`` (whether a pod may join, narrowing the requirements and
moving to another target when the pod needs it), ``step`` (what a pod adds to the cheapest type
holding the claim's pods) and ``finalize`` (the plan: every type that holds what was packed,
cheapest first). It must not choose which claim a pod tries: that is the scheduler's.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from provisioner.labels import ZONE
from provisioner.requirements import Requirement, Requirements
from provisioner.resources import Resources
from provisioner.scheduling.bins import Bin
from provisioner.scheduling.offerings import Offerings, holding, launch_zones, ports_conflict
from provisioner.scheduling.pools import Fit, Pool, unpack
from provisioner.scheduling.preferences import Attempt
from provisioner.scheduling.queue import Item
from provisioner.scheduling.results import NodeClaimPlan, Verdict
from provisioner.scheduling.topology import PodTopology

__all__ = ["PRICE_SLACK", "Lanes", "NewClaim"]

PRICE_SLACK = 1e-9
"""Relative slack on price comparisons: sums of the same prices taken in another order differ
in the last bits, and such a tie must not decide anything."""

# Plain globals: reading an enum member off its class costs several times a global lookup.
_OK, _TRANSIENT, _PERMANENT = Verdict.OK, Verdict.TRANSIENT, Verdict.PERMANENT

Lanes = dict[tuple[int, str], list["NewClaim"]]
"""Claims of the pass by (pool index, target type), in the order they joined the lane."""


class NewClaim(Bin):
    __slots__ = ("fit", "floor", "pool", "price", "reqs", "reserved")

    def __init__(self, name: str, serial: int, pool: Pool, reqs: Requirements, fit: Fit) -> None:
        super().__init__(name, serial)
        self.pool = pool
        self.taints = pool.pool.taints
        self.reqs = reqs
        self.ports = list(fit.ports)
        self.fit = fit
        """The target: the type the claim is packed against (its largest possible option)."""
        self.floor: tuple[Resources, Requirements, list[tuple[Fit, float]], int, float] | None
        self.floor = None
        """(used, reqs, frontier, position, USD/h) of the cheapest type holding ``used`` (see
        ``step``), for the ``used`` and ``reqs`` it was computed for."""
        self.price = 0.0
        """USD/h of the target at its cheapest offering the requirements admit."""
        self.reserved: dict[str, int] = {}

    @classmethod
    def open(
        cls, name: str, serial: int, pool: Pool, reqs: Requirements, fit: Fit, lanes: Lanes
    ) -> NewClaim:
        """A claim of ``fit`` for a first pod: its reservation taken, its zones settled."""
        claim = cls(name, serial, pool, reqs, fit)
        claim.reserved = pool.reserve(claim.reserved, fit)
        claim._join(fit, lanes)
        claim.set_fit(fit, reqs, lanes)
        claim.settle_zones()
        return claim

    def check(
        self,
        item: Item,
        attempt: Attempt,
        topology: PodTopology,
        zones: set[str] | None,
        offers: Offerings,
        lanes: Lanes,
    ) -> Verdict:
        """Whether ``item`` may join now; on OK the claim has taken the narrowed requirements
        (and a zone pin, or a new target) the pod needs, and the caller commits the pod."""
        if self.blocked(attempt):
            return _PERMANENT
        reason, reqs = offers.admit(self.reqs, attempt.requirements)
        if reason is not None:
            return _PERMANENT
        code, _ = topology.host_check(self.name)
        if code is not _OK:
            return code
        if zones is not None:
            possible = [z for z in self.zones if z in zones]
            if not possible:
                return _TRANSIENT
            zreq = self.reqs.find(ZONE)
            if zreq is None or zreq.single_value() is None:
                pin = topology.pick_zone(possible)[0]
                reqs = reqs.add(Requirement.any_of(ZONE, (pin,)))
        if not self._accepts(item, reqs, offers, lanes):
            return _TRANSIENT
        return _OK

    def _accepts(self, item: Item, reqs: Requirements, offers: Offerings, lanes: Lanes) -> bool:
        if reqs is not self.reqs:
            return self._retarget(item, reqs, offers, lanes)
        if self.pool.min_values:
            return offers.min_values_short(self.pool, reqs, self.used + item.requests) is None
        return True

    def _retarget(self, item: Item, reqs: Requirements, offers: Offerings, lanes: Lanes) -> bool:
        """Narrow the requirements; keep the target if still compatible, else find one."""
        entry, fit = self.pool, self.fit
        if offers.min_values_short(entry, reqs, self.used + item.requests) is not None:
            return False
        if not offers.type_ok(fit.type, reqs):
            for cand, _, _ in offers.ranked(entry, reqs, item):
                if (
                    cand.holds_with(item, self.used)
                    and entry.limit_ok(cand, self.reserved)
                    and ports_conflict(cand.ports, self.pod_ports) is None
                ):
                    fit = cand
                    break
            else:
                return False
            self.reserved = entry.reserve(self.reserved, fit)
            self.ports = [*fit.ports, *self.pod_ports]
        self.set_fit(fit, reqs, lanes)
        self.reqs = reqs
        self.settle_zones()
        return True

    def _join(self, fit: Fit, lanes: Lanes) -> None:
        lanes.setdefault((self.pool.index, fit.type.name), []).append(self)

    def set_fit(self, fit: Fit, reqs: Requirements, lanes: Lanes) -> None:
        if self.fit is not fit:
            self._join(fit, lanes)
        self.fit = fit
        offering = fit.type.cheapest(reqs)
        self.price = offering.price if offering is not None else math.inf
        room = Resources(
            cpu=fit.cpu, memory=fit.mem, pods=fit.pods, ephemeral_storage=fit.eph,
            extended=tuple(sorted(fit.ext.items())),
        ) - self.used  # fmt: skip
        self.cpu, self.mem, self.pods, self.eph, self.ext = unpack(room)

    def grow(self, fit: Fit, lanes: Lanes) -> None:
        """Move to a bigger target (``step`` checked its zones and ports, the caller the
        pool's limits); the reservation against those limits moves with it."""
        self.reserved = self.pool.reserve(self.reserved, fit)
        self.set_fit(fit, self.reqs, lanes)
        self.ports = [*fit.ports, *self.pod_ports]
        self.settle_zones()

    def settle_zones(self) -> None:
        """Recompute where the claim may launch; a single possible zone is pinned, so the zone
        its pods were counted in cannot change later."""
        self.zones = launch_zones(self.reqs, self.fit.type)
        zreq = self.reqs.find(ZONE)
        if len(self.zones) == 1 and (zreq is None or zreq.single_value() is None):
            self.reqs = self.reqs.add(Requirement.any_of(ZONE, self.zones))

    def step(
        self, item: Item, alone: float, grow: bool, offers: Offerings
    ) -> tuple[float, Fit] | None:
        """What putting ``item`` here adds to the price of the cheapest type that holds the
        claim's pods, with that type; None when it is more than ``alone`` (a node of its own
        for ``item``). With ``grow`` (no room left in the target) the type must also keep the
        claim's launch zones (what topology counted stays true) and clash with no host port of
        its pods, as it becomes the new target."""
        floor = self.floor
        if floor is None or floor[0] is not self.used or floor[1] is not self.reqs:
            frontier = offers.frontier(self.pool, self.reqs)
            u = self.used
            at = holding(frontier, u.cpu, u.memory, u.pods, u.ephemeral_storage, u.extended)
            if at is None:
                return None
            floor = self.floor = (self.used, self.reqs, frontier, at[0], at[1])
        _, reqs, frontier, start, now = floor
        ceiling = now + alone * (1 + PRICE_SLACK)
        u = self.used
        cpu, mem, pods, eph = (
            u.cpu + item.cpu,
            u.memory + item.mem,
            u.pods + 1,
            u.ephemeral_storage + item.eph,
        )
        ext = (u + item.requests).extended if item.ext else ()
        while True:
            found = holding(frontier, cpu, mem, pods, eph, ext, start, ceiling)
            if found is None:
                return None
            fit = frontier[found[0]][0]
            if not grow or (
                (not self.pod_ports or ports_conflict(fit.ports, self.pod_ports) is None)
                and set(self.zones) <= set(launch_zones(reqs, fit.type))
            ):
                return found[1] - now, fit
            start = found[0] + 1

    def options(self, offers: Offerings) -> Iterator[tuple[Fit, float]]:
        """Every compatible type that holds what was packed (within the reservation and
        clashing with no host port), with its price, cheapest first."""
        used = self.used
        ucpu, umem, upods, ueph = used.cpu, used.memory, used.pods, used.ephemeral_storage
        for fit, price in offers.priced(self.pool, self.reqs):
            if fit.cpu < ucpu or fit.mem < umem or fit.pods < upods or fit.eph < ueph:
                continue
            if used.extended and not all(fit.ext.get(k, 0) >= v for k, v in used.extended):
                continue
            if self.reserved and not all(
                (1 if n == "nodes" else fit.cap.get(n)) <= v for n, v in self.reserved.items()
            ):
                continue
            if self.pod_ports and ports_conflict(fit.ports, self.pod_ports) is not None:
                continue
            yield fit, price

    def finalize(self, offers: Offerings) -> NodeClaimPlan:
        """The plan: every option (``options``), cheapest first."""
        entry = self.pool
        used = self.used
        options = list(self.options(offers))
        cheapest, price = options[0]
        return NodeClaimPlan(
            name=self.name,
            nodepool=entry.pool.name,
            requirements=self.reqs,
            pods=tuple(self.pods_placed),
            requests=used + cheapest.overhead,
            instance_types=tuple(f.type for f, _ in options),
            price=price,
            taints=entry.pool.taints,
            startup_taints=entry.pool.startup_taints,
            labels=self.reqs.single_values(),
        )
