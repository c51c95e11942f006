"""Topology bookkeeping for the simulation: pod counts per zone / hostname domain.

Owns ``TopologyGroup``: one per distinct pod affinity term, anti-affinity term or topology spread
constraint found on the pods being scheduled (and anti-affinity terms of pods already running).
A group counts, per domain, the pods its selector matches (``counts``) and, for anti-affinity,
where the pods that *own* the term run (``owners``), so an incoming pod that matches someone
else's anti-affinity selector is kept out of that owner's domain (the symmetric rule).

Recording rule: a pod on a node whose domain is known counts in that domain. A pod on a
NodeClaim whose zone is not decided yet counts in *every* zone the claim might launch in for
anti-affinity groups (pessimistic: keeps others out of all of them) and in none for affinity and
spread groups (which only trust a decided domain). Groups must all exist before the first pod is
recorded; ``simulate`` registers them up front. This module decides nothing about placement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum

from provisioner.model import AffinityTerm, SpreadConstraint

__all__ = ["GroupKind", "TopologyGroup"]


class GroupKind(Enum):
    SPREAD = "topology spread"
    AFFINITY = "pod affinity"
    ANTI_AFFINITY = "pod anti-affinity"


class TopologyGroup:
    """Per-domain counts of pods matching one term's selector."""

    __slots__ = ("counts", "key", "kind", "max_skew", "min_domains", "owners", "term", "total")

    def __init__(self, kind: GroupKind, term: AffinityTerm | SpreadConstraint) -> None:
        self.kind = kind
        self.term = term
        self.key = term.topology_key
        self.max_skew = term.max_skew if isinstance(term, SpreadConstraint) else 0
        self.min_domains = term.min_domains if isinstance(term, SpreadConstraint) else None
        self.counts: dict[str, int] = {}
        self.owners: dict[str, int] = {}
        self.total = 0
        """Matching pods recorded in a known domain, anywhere."""

    def matches(self, namespace: str, labels: Mapping[str, str]) -> bool:
        return self.term.matches(namespace, labels)

    def record(self, domains: Iterable[str]) -> None:
        for domain in domains:
            self.counts[domain] = self.counts.get(domain, 0) + 1
            self.total += 1

    def record_owner(self, domains: Iterable[str]) -> None:
        for domain in domains:
            self.owners[domain] = self.owners.get(domain, 0) + 1

    def global_min(self, eligible: Iterable[str]) -> int:
        """The smallest count over ``eligible`` domains (0 when fewer than minDomains exist)."""
        domains = list(eligible)
        if not domains or (self.min_domains is not None and len(domains) < self.min_domains):
            return 0
        return min(self.counts.get(d, 0) for d in domains)

    def describe(self) -> str:
        return f"{self.kind.value} on {self.key}"
