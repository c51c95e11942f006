"""The provisioner's view of Kubernetes objects: plain frozen dataclasses, no JSON.

Owns ``Pod`` (what scheduling needs of a pending pod or a daemonset template), ``NodePool``,
``KubeletConfig``, ``NodeView`` (an existing node or an in-flight NodeClaim with the pods it
holds), and the small value types they are made of (taints, tolerations, label selectors,
affinity terms, topology spread constraints, host ports). Building these from Kubernetes JSON
is ``parsing``'s job; deciding placements is ``simulate``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from provisioner.labels import NODEPOOL, ZONE
from provisioner.requirements import Requirement, Requirements
from provisioner.resources import Resources

__all__ = [
    "AffinityTerm",
    "HostPort",
    "KubeletConfig",
    "NodePool",
    "NodeView",
    "Pod",
    "SpreadConstraint",
    "Taint",
    "Toleration",
]

NO_SCHEDULE = "NoSchedule"
PREFER_NO_SCHEDULE = "PreferNoSchedule"
NO_EXECUTE = "NoExecute"
_NO_RESOURCES = Resources()
_NO_REQUIREMENTS = Requirements()


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str = ""
    effect: str = NO_SCHEDULE

    def __str__(self) -> str:
        value = f"={self.value}" if self.value else ""
        return f"{self.key}{value}:{self.effect}"


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str = ""
    """Empty with operator Exists: tolerates every taint."""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""
    """Empty: every effect."""

    def tolerates(self, taint: Taint) -> bool:
        if self.effect and self.effect != taint.effect:
            return False
        if self.operator == "Exists":
            return not self.key or self.key == taint.key
        return self.key == taint.key and self.value == taint.value


def untolerated(taints: tuple[Taint, ...], tolerations: tuple[Toleration, ...]) -> Taint | None:
    """The first taint none of ``tolerations`` covers, or None."""
    for taint in taints:
        if not any(t.tolerates(taint) for t in tolerations):
            return taint
    return None


@dataclass(frozen=True, slots=True)
class AffinityTerm:
    """One pod (anti-)affinity term: pods matching ``selector`` in ``namespaces``, per domain."""

    topology_key: str
    selector: Requirements | None
    """None matches no pod (a nil labelSelector); an empty Requirements matches every pod."""
    namespaces: frozenset[str]
    """Namespaces whose pods count; empty with ``all_namespaces`` false is resolved by parsing."""
    all_namespaces: bool = False
    weight: int = 0
    """For preferred terms, 1..100; 0 for required ones."""

    def matches(self, namespace: str, labels: Mapping[str, str]) -> bool:
        if self.selector is None:
            return False
        if not self.all_namespaces and namespace not in self.namespaces:
            return False
        return self.selector.match_labels(labels) is None


@dataclass(frozen=True, slots=True)
class SpreadConstraint:
    """A topology spread constraint on the zone or hostname key."""

    topology_key: str
    max_skew: int
    required: bool
    """True for whenUnsatisfiable DoNotSchedule, False for ScheduleAnyway (a preference)."""
    selector: Requirements | None
    namespace: str
    min_domains: int | None = None
    honor_node_affinity: bool = True
    """nodeAffinityPolicy Honor (the default): only domains the pod may use count."""

    def matches(self, namespace: str, labels: Mapping[str, str]) -> bool:
        return (
            self.selector is not None
            and namespace == self.namespace
            and self.selector.match_labels(labels) is None
        )


@dataclass(frozen=True, slots=True)
class HostPort:
    port: int
    protocol: str = "TCP"
    host_ip: str = ""
    """Empty or 0.0.0.0 binds every address, so it conflicts with any IP on the same port."""

    def conflicts(self, other: HostPort) -> bool:
        if self.port != other.port or self.protocol != other.protocol:
            return False
        wild = ("", "0.0.0.0")
        return self.host_ip in wild or other.host_ip in wild or self.host_ip == other.host_ip


@dataclass(frozen=True, slots=True, eq=False)
class Pod:
    """What scheduling needs to know about one pod (pending, bound, or a daemonset template)."""

    name: str
    namespace: str = "default"
    uid: str = ""
    created: float = 0.0
    """Creation time, Unix seconds; a queue tie-breaker only."""
    labels: Mapping[str, str] = field(default_factory=dict)
    requests: Resources = _NO_RESOURCES
    """max(sum of containers (+ sidecars), largest init container) + overhead; no pod count."""
    required_terms: tuple[Requirements, ...] = (_NO_REQUIREMENTS,)
    """Alternatives (OR) of node requirements; nodeSelector is already merged into each."""
    preferred_terms: tuple[tuple[int, Requirements], ...] = ()
    """Preferred node affinity ``(weight, requirements)``, heaviest first."""
    tolerations: tuple[Toleration, ...] = ()
    affinity: tuple[AffinityTerm, ...] = ()
    anti_affinity: tuple[AffinityTerm, ...] = ()
    preferred_affinity: tuple[AffinityTerm, ...] = ()
    """Lightest first: the order in which they are given up."""
    preferred_anti_affinity: tuple[AffinityTerm, ...] = ()
    """Lightest first: the order in which they are given up."""
    spread: tuple[SpreadConstraint, ...] = ()
    host_ports: tuple[HostPort, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class KubeletConfig:
    """The kubelet settings that change a node's pod capacity and allocatable."""

    max_pods: int | None = None
    """None: the ENI-limited figure of the instance type."""
    pods_per_core: int | None = None
    system_reserved: Resources = _NO_RESOURCES
    kube_reserved: Resources | None = None
    """None: the AWS AMI-family defaults (tiered CPU, 11 MiB per pod + 255 MiB memory, 1Gi disk)."""
    eviction_hard: tuple[tuple[str, str], ...] = ()
    """Signal -> threshold (``("memory.available", "100Mi")``, ``("nodefs.available", "10%")``);
    empty: the defaults memory.available=100Mi, nodefs.available=10%."""


@dataclass(frozen=True, slots=True)
class NodePool:
    """A NodePool's scheduling-relevant fields (Karpenter v1 names)."""

    name: str
    weight: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    startup_taints: tuple[Taint, ...] = ()
    """Put on at boot and removed by a daemon; pods need not tolerate them."""
    requirements: Requirements = _NO_REQUIREMENTS
    limits: Resources | None = None
    """None: unlimited. A resource absent from a set limit is unlimited; ``nodes`` counts nodes."""
    limit_names: frozenset[str] = frozenset()
    """Resources named in ``spec.limits`` (a limit of 0 is a real limit)."""
    kubelet: KubeletConfig = KubeletConfig()

    def template_requirements(self) -> Requirements:
        """Requirements plus template labels (as ``In``) plus the nodepool label."""
        return self.requirements.add(
            *(Requirement.any_of(k, (v,)) for k, v in self.labels.items()),
            Requirement.any_of(NODEPOOL, (self.name,)),
        )


@dataclass(frozen=True, slots=True, eq=False)
class NodeView:
    """An existing node, or an in-flight NodeClaim, with the pods bound or nominated to it."""

    name: str
    labels: Mapping[str, str]
    allocatable: Resources
    capacity: Resources
    """Counted against the NodePool's limits (for an unlaunched claim: its largest option)."""
    taints: tuple[Taint, ...] = ()
    pods: tuple[Pod, ...] = ()
    initialized: bool = True
    """False for nodes still booting; their startup taints are then not held against pods."""
    startup_taints: tuple[Taint, ...] = ()
    in_flight: bool = False
    """A NodeClaim launched or launching whose node has not registered yet."""

    @property
    def nodepool(self) -> str | None:
        return self.labels.get(NODEPOOL)

    @property
    def zone(self) -> str | None:
        return self.labels.get(ZONE)
