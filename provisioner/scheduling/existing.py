"""Existing nodes and in-flight NodeClaims, as the simulation fills them.

Owns ``ExistingNode``: built from a ``NodeView`` (room left after the pods bound to it, taints
that count, its zone) and ``check``, whether a pod may go there (taints, host ports, the node's
labels against the pod's requirements, topology). It must not change what the node is: it has
no pool, no instance type and no limits to reserve.
"""

from __future__ import annotations

from collections.abc import Mapping

from provisioner.model import NodeView
from provisioner.resources import Resources
from provisioner.scheduling.bins import Bin
from provisioner.scheduling.pools import unpack
from provisioner.scheduling.preferences import Attempt
from provisioner.scheduling.results import Verdict
from provisioner.scheduling.topology import PodTopology

__all__ = ["ExistingNode"]

UNREGISTERED_TAINT = "karpenter.sh/unregistered"
"""Karpenter puts it on a node until the node registers; like startup taints, it will be gone
by the time the pod could run, so an uninitialized node does not count it."""
EPHEMERAL_TAINTS = frozenset(
    {
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/network-unavailable",
        "node.cloudprovider.kubernetes.io/uninitialized",
    }
)
"""Taints the node lifecycle controller and cloud controllers put on a node until it is Ready
(Karpenter's "known ephemeral taints"): on a node still booting they are not held against
pods, or every pass until it is Ready launches another node for the pods it was made for."""

# Plain globals: reading an enum member off its class costs several times a global lookup.
_OK, _TRANSIENT, _PERMANENT = Verdict.OK, Verdict.TRANSIENT, Verdict.PERMANENT


class ExistingNode(Bin):
    __slots__ = ("labels",)

    def __init__(self, node: NodeView, serial: int) -> None:
        super().__init__(node.name, serial)
        self.labels: Mapping[str, str] = node.labels
        skip = {t.key for t in node.startup_taints} | {UNREGISTERED_TAINT} | EPHEMERAL_TAINTS
        self.taints = (
            node.taints if node.initialized else tuple(t for t in node.taints if t.key not in skip)
        )
        # Summed as plain integers: a node is built for every simulation (a disruption pass
        # runs hundreds over the same nodes), and a Resources per pod adds up.
        cpu = memory = eph = 0
        count = len(node.pods)
        extended = Resources()
        for pod in node.pods:
            requests = pod.requests
            cpu += requests.cpu
            memory += requests.memory
            eph += requests.ephemeral_storage
            count += requests.pods
            if requests.extended:
                extended += Resources(extended=requests.extended)
            if pod.host_ports:
                self.ports.extend(pod.host_ports)
        used = Resources(cpu, memory, count, eph, extended.extended)
        self.used = used
        self.cpu, self.mem, self.pods, self.eph, self.ext = unpack(node.allocatable - used)
        self.zones = (node.zone,) if node.zone else ()

    def check(self, attempt: Attempt, topology: PodTopology, zones: set[str] | None) -> Verdict:
        """Whether a pod of this attempt may go here now (room is the caller's to check)."""
        if self.blocked(attempt):
            return _PERMANENT
        if attempt.requirements.match_labels(self.labels) is not None:
            return _PERMANENT
        code, _ = topology.host_check(self.name)
        if code is not _OK:
            return code
        if zones is not None and not any(z in zones for z in self.zones):
            return _TRANSIENT
        return _OK
