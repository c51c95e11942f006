"""Well-known node label keys and taint keys, and the normalization of their beta aliases.

Owns the names only (Kubernetes core, Karpenter ``karpenter.sh``, AWS ``karpenter.k8s.aws``);
what a label means for scheduling lives in ``requirements`` and ``simulate``.
"""

from __future__ import annotations

__all__ = [
    "ARCH",
    "CAPACITY_TYPE",
    "CAPACITY_TYPE_ON_DEMAND",
    "CAPACITY_TYPE_SPOT",
    "DISRUPTED_TAINT",
    "DO_NOT_DISRUPT",
    "HOSTNAME",
    "INSTANCE_TYPE",
    "NODEPOOL",
    "OS",
    "REGION",
    "UNREGISTERED_TAINT",
    "WELL_KNOWN_LABELS",
    "ZONE",
    "normalize_key",
]

ZONE = "topology.kubernetes.io/zone"
REGION = "topology.kubernetes.io/region"
HOSTNAME = "kubernetes.io/hostname"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"
ARCH = "kubernetes.io/arch"
OS = "kubernetes.io/os"
WINDOWS_BUILD = "node.kubernetes.io/windows-build"
CAPACITY_TYPE = "karpenter.sh/capacity-type"
NODEPOOL = "updraft.io/nodepool"
"""Which NodePool a node (or NodeClaim) belongs to: Updraft's name for `karpenter.sh/nodepool`."""
DISRUPTED_TAINT = "updraft.io/disrupted"
"""The NoSchedule taint on a node being disrupted or drained: no new pod lands on it while it
drains (Karpenter's ``karpenter.sh/disrupted``)."""
UNREGISTERED_TAINT = "karpenter.sh/unregistered"
"""NoExecute taint a node boots with until it has registered (then removed)."""
DO_NOT_DISRUPT = ("karpenter.sh/do-not-disrupt", "updraft.io/do-not-disrupt")
"""Annotations (value ``"true"``): on a pod, it is never evicted (a drain waits for it) and its
node is no disruption candidate; on a node, the node is no candidate."""
CAPACITY_TYPE_SPOT = "spot"
CAPACITY_TYPE_ON_DEMAND = "on-demand"

AWS_INSTANCE_CATEGORY = "karpenter.k8s.aws/instance-category"
AWS_INSTANCE_FAMILY = "karpenter.k8s.aws/instance-family"
AWS_INSTANCE_GENERATION = "karpenter.k8s.aws/instance-generation"
AWS_INSTANCE_SIZE = "karpenter.k8s.aws/instance-size"
AWS_INSTANCE_CPU = "karpenter.k8s.aws/instance-cpu"
AWS_INSTANCE_MEMORY = "karpenter.k8s.aws/instance-memory"
AWS_INSTANCE_HYPERVISOR = "karpenter.k8s.aws/instance-hypervisor"
AWS_INSTANCE_GPU_COUNT = "karpenter.k8s.aws/instance-gpu-count"
AWS_INSTANCE_GPU_NAME = "karpenter.k8s.aws/instance-gpu-name"
AWS_INSTANCE_GPU_MANUFACTURER = "karpenter.k8s.aws/instance-gpu-manufacturer"
AWS_INSTANCE_GPU_MEMORY = "karpenter.k8s.aws/instance-gpu-memory"

# Keys an instance type or offering defines: a pod may require them even when a NodePool does not
# mention them, because the instance type will supply the value. Any other key a pod requires
# must be defined by the NodePool (template label or requirement), or the pod cannot fit.
WELL_KNOWN_LABELS = frozenset(
    {
        ZONE,
        REGION,
        INSTANCE_TYPE,
        ARCH,
        OS,
        WINDOWS_BUILD,
        CAPACITY_TYPE,
        NODEPOOL,
        AWS_INSTANCE_CATEGORY,
        AWS_INSTANCE_FAMILY,
        AWS_INSTANCE_GENERATION,
        AWS_INSTANCE_SIZE,
        AWS_INSTANCE_CPU,
        AWS_INSTANCE_MEMORY,
        AWS_INSTANCE_HYPERVISOR,
        AWS_INSTANCE_GPU_COUNT,
        AWS_INSTANCE_GPU_NAME,
        AWS_INSTANCE_GPU_MANUFACTURER,
        AWS_INSTANCE_GPU_MEMORY,
    }
)

_ALIASES = {
    "failure-domain.beta.kubernetes.io/zone": ZONE,
    "failure-domain.beta.kubernetes.io/region": REGION,
    "beta.kubernetes.io/arch": ARCH,
    "beta.kubernetes.io/os": OS,
    "beta.kubernetes.io/instance-type": INSTANCE_TYPE,
}


def normalize_key(key: str) -> str:
    """Map a deprecated beta label key to its GA name; other keys pass through."""
    return _ALIASES.get(key, key)
