"""Pod shapes: pods with the same namespace, labels and attempt behave the same, so the work
of placing one (candidate nodes, claim lanes, dead bins, pool verdicts) is cached per shape.

Owns ``Shape``. It must not decide placements; it remembers what the scheduler learned.
"""

from __future__ import annotations

from provisioner.requirements import Requirements
from provisioner.scheduling.claims import NewClaim
from provisioner.scheduling.existing import ExistingNode
from provisioner.scheduling.preferences import Attempt
from provisioner.scheduling.topology import PodTopology

__all__ = ["Shape"]


class Shape:
    __slots__ = (
        "attempt",
        "candidates",
        "dead",
        "free",
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
