"""Pod shapes: pods with the same namespace, labels and attempt behave the same, so the work
of placing one (candidate nodes, claim lanes, dead bins, pool verdicts) is cached per shape.

Owns ``Shape``. It must not decide placements; it remembers what the scheduler learned (and
whether a pool can take the shape at all, which depends on nothing else).
"""

from __future__ import annotations

from provisioner.requirements import Requirements
from provisioner.scheduling.claims import NewClaim
from provisioner.scheduling.existing import ExistingNode
from provisioner.scheduling.offerings import Offerings
from provisioner.scheduling.pools import Pool
from provisioner.scheduling.preferences import Attempt, blocking
from provisioner.scheduling.topology import PodTopology

__all__ = ["Shape"]


class Shape:
    __slots__ = (
        "attempt",
        "candidates",
        "dead",
        "free",
        "free_cache",
        "lane_seen",
        "lanes",
        "pool_cache",
        "topology",
    )

    def __init__(
        self, attempt: Attempt, topology: PodTopology, candidates: list[ExistingNode]
    ) -> None:
        self.attempt = attempt
        self.topology = topology
        self.candidates = candidates
        """Existing and in-flight nodes this shape may still use."""
        self.lanes: dict[tuple[int, str], list[NewClaim]] = {}
        """Claims of this pass by (pool, target type) this shape may still use."""
        self.lane_seen: dict[tuple[int, str], int] = {}
        self.dead: set[int] = set()
        """Serials of bins this shape can never use (compacted away now and then)."""
        self.pool_cache: dict[int, tuple[str | None, Requirements]] = {}
        """Per pool index: why the pool cannot take the shape, or its narrowed requirements."""
        self.free = not (
            topology.owned
            or topology.matching
            or attempt.host_ports
            or len(attempt.requirements)
            or attempt.tolerate_prefer
        )
        """No node requirements, host ports or topology terms of its own, and no topology
        group counts it: where it lands among a pool's new claims changes nothing but cost."""
        self.free_cache: dict[int, bool] = {}
        """Per pool index: ``free_in``'s answer."""

    def free_in(self, entry: Pool, offers: Offerings) -> bool:
        """``free``, or free but for node requirements every claim of ``entry`` meets anyway
        (a nodeSelector on a label of the pool's template, say)."""
        if self.free:
            return True
        known = self.free_cache.get(entry.index)
        if known is None:
            attempt, topology = self.attempt, self.topology
            known = False
            if not (
                topology.owned or topology.matching or attempt.host_ports or attempt.tolerate_prefer
            ):
                why, reqs = self.pool_verdict(entry, offers)
                known = why is None and reqs == entry.reqs
            self.free_cache[entry.index] = known
        return known

    def pool_verdict(self, entry: Pool, offers: Offerings) -> tuple[str | None, Requirements]:
        """Why ``entry`` can never open a claim for this shape (an untolerated taint, a
        requirement its template rules out), or None and the requirements such a claim
        starts from."""
        cached = self.pool_cache.get(entry.index)
        if cached is None:
            taint = blocking(entry.pool.taints, self.attempt)
            if taint is not None:
                cached = (f"taint {taint} not tolerated", entry.reqs)
            else:
                cached = offers.admit(entry.reqs, self.attempt.requirements)
                if cached[0] is not None:
                    cached = (f"incompatible requirement {cached[0]}", entry.reqs)
            self.pool_cache[entry.index] = cached
        return cached
