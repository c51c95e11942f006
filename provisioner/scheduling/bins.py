"""What an existing node and a new claim have in common: room left, pods placed, the ports and
taints a pod is checked against.

Owns ``Bin``, the shared base of ``ExistingNode`` (``existing``) and ``NewClaim`` (``claims``).
It must not decide by itself whether a pod fits: each subtype's ``check`` does, as their rules
differ (labels for a node, requirements and a target type for a claim).
"""

from __future__ import annotations

from provisioner.model import HostPort, Pod, Taint
from provisioner.resources import Resources
from provisioner.scheduling.offerings import ports_conflict
from provisioner.scheduling.preferences import Attempt, blocking

__all__ = ["Bin"]


class Bin:
    __slots__ = (
        "closed",
        "cpu",
        "eph",
        "ext",
        "free",
        "mem",
        "name",
        "pod_ports",
        "pods",
        "pods_placed",
        "ports",
        "serial",
        "taints",
        "used",
        "zones",
    )

    def __init__(self, name: str, serial: int) -> None:
        self.name = name
        self.serial = serial
        """Unique in the pass: ties break on it, and shapes remember dead bins by it."""
        self.closed = False
        """Too little room left for the smallest pod queued."""
        self.free = True
        """Every pod placed here so far is free to go on any claim of the pool (see Shape)."""
        self.cpu = self.mem = self.pods = self.eph = 0
        """Room left."""
        self.ext: dict[str, int] = {}
        self.taints: tuple[Taint, ...] = ()
        self.ports: list[HostPort] = []
        self.used = Resources()
        self.zones: tuple[str, ...] = ()
        """Zones the bin is or may be in (one for nodes and pinned claims)."""
        self.pods_placed: list[Pod] = []
        self.pod_ports: list[HostPort] = []
        """Host ports of pods placed in this pass (``ports`` adds daemonsets and bound pods)."""

    def blocked(self, attempt: Attempt) -> bool:
        """An untolerated taint or a host port clash: never for pods of this attempt."""
        if blocking(self.taints, attempt) is not None:
            return True
        return (
            bool(attempt.host_ports) and ports_conflict(attempt.host_ports, self.ports) is not None
        )
