"""Topology: pod counts per zone / hostname domain, and the decisions made from them.

Owns ``TopologyGroup`` (one per distinct pod affinity term, anti-affinity term or topology spread
constraint found on the pods being scheduled, and anti-affinity terms of pods already running),
``Topology`` (every group, and the zones a pod could ever land in) and ``PodTopology`` (the
groups that concern one pod shape, and what they allow: the zones where its spread skew,
affinity and anti-affinity hold; whether a given host is allowed; which zone to pin a claim to).
It must not look at resources, prices or claims' instance types: the scheduler asks it about
domains (zone names, host names) and tells it where a pod went.

A group counts, per domain, the pods its selector matches (``counts``) and, for anti-affinity,
where the pods that *own* the term run (``owners``), so an incoming pod that matches someone
else's anti-affinity selector is kept out of that owner's domain (the symmetric rule).

Recording rule: a pod on a node whose domain is known counts in that domain. A pod on a
NodeClaim whose zone is not decided yet counts in *every* zone the claim might launch in for
anti-affinity groups (pessimistic: keeps others out of all of them) and in none for affinity and
spread groups (which only trust a decided domain). Groups must all exist before the first pod is
recorded: ``Topology`` registers them up front from the pending pods and the running ones.

Hostname spread treats a new node's count as 0, so a new claim can always take one more pod.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import Enum

from provisioner.labels import HOSTNAME, ZONE
from provisioner.model import AffinityTerm, NodeView, Pod, SpreadConstraint
from provisioner.scheduling.preferences import Attempt
from provisioner.scheduling.results import Verdict

__all__ = ["GroupKind", "PodTopology", "Topology", "TopologyGroup"]

# Plain globals: reading an enum member off its class costs several times a global lookup,
# and host checks run for every node a pod is tried on.
_OK, _TRANSIENT, _PERMANENT = Verdict.OK, Verdict.TRANSIENT, Verdict.PERMANENT


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


class Topology:
    """Every group of the pass, and the zone universe (zones of nodes and of offerings)."""

    __slots__ = ("groups", "zones")

    def __init__(
        self, *, zones: Iterable[str], pending: Sequence[Pod], nodes: Sequence[NodeView]
    ) -> None:
        self.zones = tuple(sorted(set(zones)))
        self.groups: dict[tuple[GroupKind, AffinityTerm | SpreadConstraint], TopologyGroup] = {}
        for pod in pending:
            for spread in pod.spread:
                self.group(GroupKind.SPREAD, spread)
            for term in (*pod.affinity, *pod.preferred_affinity):
                self.group(GroupKind.AFFINITY, term)
            for term in (*pod.anti_affinity, *pod.preferred_anti_affinity):
                self.group(GroupKind.ANTI_AFFINITY, term)
        for node in nodes:
            for pod in node.pods:
                for term in pod.anti_affinity:
                    self.group(GroupKind.ANTI_AFFINITY, term)

    def group(self, kind: GroupKind, term: AffinityTerm | SpreadConstraint) -> TopologyGroup:
        group = self.groups.get((kind, term))
        if group is None:
            group = self.groups[(kind, term)] = TopologyGroup(kind, term)
        return group

    def record_running(self, pod: Pod, host: str, zones: tuple[str, ...]) -> None:
        """Count a pod already bound to a node (or nominated to an in-flight claim)."""
        domains = {ZONE: zones, HOSTNAME: (host,)}
        for group in self.groups.values():
            if group.matches(pod.namespace, pod.labels):
                group.record(domains[group.key])
        for term in pod.anti_affinity:
            self.group(GroupKind.ANTI_AFFINITY, term).record_owner(domains[term.topology_key])

    def for_pod(self, namespace: str, labels: Mapping[str, str], attempt: Attempt) -> PodTopology:
        return PodTopology(self, namespace, labels, attempt)


class PodTopology:
    """The groups one pod shape (namespace, labels, attempt) counts in or is bound by."""

    __slots__ = (
        "affinity",
        "anti",
        "eligible_zones",
        "inverse",
        "matching",
        "owned",
        "spread",
        "universe",
        "zone_bound",
    )

    def __init__(
        self, topology: Topology, namespace: str, labels: Mapping[str, str], attempt: Attempt
    ) -> None:
        group = topology.group
        self.universe = topology.zones
        self.matching = [g for g in topology.groups.values() if g.matches(namespace, labels)]
        """Groups whose selector counts this pod."""
        self.inverse = [g for g in self.matching if g.kind is GroupKind.ANTI_AFFINITY]
        """Anti-affinity groups of other pods that keep this one out of their domains."""
        self.spread = [group(GroupKind.SPREAD, s) for s in attempt.spread]
        self.affinity = [group(GroupKind.AFFINITY, t) for t in attempt.affinity]
        self.anti = [group(GroupKind.ANTI_AFFINITY, t) for t in attempt.anti_affinity]
        self.owned = bool(self.spread or self.affinity or self.anti)
        """The pod carries topology terms of its own."""
        self.zone_bound = any(
            g.key == ZONE for g in [*self.spread, *self.affinity, *self.anti, *self.inverse]
        )
        """Some group keyed on zone concerns the pod: its claim must be pinned to a zone."""
        zreq = attempt.requirements.get(ZONE)
        self.eligible_zones = tuple(z for z in self.universe if zreq is None or zreq.has(z))

    def allowed_zones(self) -> set[str]:
        """Zones where the pod's zone-keyed constraints hold right now."""
        allowed = set(self.eligible_zones)
        for g in self.spread:
            if g.key == ZONE:
                honor = isinstance(g.term, SpreadConstraint) and g.term.honor_node_affinity
                floor = g.global_min(self.eligible_zones if honor else self.universe)
                allowed = {z for z in allowed if g.counts.get(z, 0) + 1 - floor <= g.max_skew}
        for g in self.affinity:
            if g.key == ZONE and not (g.total == 0 and g in self.matching):
                allowed = {z for z in allowed if g.counts.get(z, 0) > 0}
        for g in self.anti:
            if g.key == ZONE:
                allowed = {z for z in allowed if not g.counts.get(z, 0)}
        for g in self.inverse:
            if g.key == ZONE:
                allowed = {z for z in allowed if not g.owners.get(z, 0)}
        return allowed

    def host_check(self, host: str) -> tuple[Verdict, str]:
        """Whether the pod may go on ``host`` (a node or claim name), and if not, why."""
        for g in self.spread:
            if g.key == HOSTNAME and g.counts.get(host, 0) + 1 > g.max_skew:
                return _PERMANENT, g.describe()
        for g in self.anti:
            if g.key == HOSTNAME and g.counts.get(host, 0):
                return _PERMANENT, g.describe()
        for g in self.inverse:
            if g.key == HOSTNAME and g.owners.get(host, 0):
                return _PERMANENT, "pod anti-affinity of a pod already there"
        for g in self.affinity:
            first = g.total == 0 and g in self.matching  # the first of a self-affine group
            if g.key == HOSTNAME and not g.counts.get(host, 0) and not first:
                return _TRANSIENT, g.describe()
        return _OK, ""

    def pick_zone(self, zones: Iterable[str]) -> list[str]:
        """``zones`` best first: least loaded for the pod's zone spread, then by name."""
        spread = [g for g in self.spread if g.key == ZONE]
        return sorted(zones, key=lambda z: (sum(g.counts.get(z, 0) for g in spread), z))

    def record(self, host: str, zones: tuple[str, ...]) -> None:
        """Count the pod on ``host``, which is in (or may launch in) ``zones``."""
        hosts = (host,)
        for g in self.matching:
            if g.key == HOSTNAME:
                g.record(hosts)
            elif g.kind is GroupKind.ANTI_AFFINITY or len(zones) == 1:
                g.record(zones)
        for g in self.anti:
            g.record_owner(hosts if g.key == HOSTNAME else zones)
