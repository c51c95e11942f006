"""Updraft's node provisioner: pending pods in, right-sized NodeClaims out (Karpenter v1 semantics).

The pure core (no I/O) and, on top of it, the controllers that talk to Kubernetes through
``kube`` and launch through a cloud provider.

- ``quantity``, ``resources``: Kubernetes quantities and exact resource vectors.
- ``requirements``: the node-requirement algebra (In, NotIn, Exists, DoesNotExist, Gt, Lt).
- ``model``, ``parsing``: frozen views of Pods, NodePools, Nodes and their Kubernetes JSON boundary.
- ``catalog``: AWS instance types, offerings, prices and allocatable (packaged data).
- ``scheduling``: the scheduling simulation (one module per concept; ``simulate`` is its face).
- ``errors``: the error tree.

Controllers (``updraft provisioner`` wires them; import them from their modules):

- ``objects``: NodePool/NodeClaim/NodeClass JSON: validation, claims from plans, views back.
- ``cloud``, ``kwok``: the cloud provider interface and the kwok provider (fake nodes).
- ``state``, ``batching``, ``provisioning``: informers, batch windows, one provisioning pass.
- ``lifecycle``, ``nodepools``: NodeClaim launch/registration/initialization/termination,
  NodePool validation and status.
- ``controller``, ``metrics``: the leader-elected assembly and its Prometheus metrics.
"""

from provisioner.catalog import Catalog, InstanceType, Offering
from provisioner.errors import (
    CatalogError,
    InvalidFieldError,
    ProvisionerError,
    QuantityError,
    RequirementError,
)
from provisioner.model import (
    AffinityTerm,
    HostPort,
    KubeletConfig,
    NodePool,
    NodeView,
    Pod,
    SpreadConstraint,
    Taint,
    Toleration,
)
from provisioner.parsing import node_from_k8s, nodepool_from_k8s, pod_from_k8s, pod_from_template
from provisioner.quantity import format_cpu, format_quantity, parse_quantity, to_millis, to_units
from provisioner.requirements import Requirement, Requirements
from provisioner.resources import Resources
from provisioner.scheduling import NodeClaimPlan, SimulationResult, simulate

__all__ = [
    "AffinityTerm",
    "Catalog",
    "CatalogError",
    "HostPort",
    "InstanceType",
    "InvalidFieldError",
    "KubeletConfig",
    "NodeClaimPlan",
    "NodePool",
    "NodeView",
    "Offering",
    "Pod",
    "ProvisionerError",
    "QuantityError",
    "Requirement",
    "RequirementError",
    "Requirements",
    "Resources",
    "SimulationResult",
    "SpreadConstraint",
    "Taint",
    "Toleration",
    "format_cpu",
    "format_quantity",
    "node_from_k8s",
    "nodepool_from_k8s",
    "parse_quantity",
    "pod_from_k8s",
    "pod_from_template",
    "simulate",
    "to_millis",
    "to_units",
]
