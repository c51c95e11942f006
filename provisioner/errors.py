"""The provisioner's error tree; every exception the package raises on purpose is here.

::

    ProvisionerError                 base of everything raised on purpose by `provisioner`
    ├── InvalidFieldError            a Kubernetes object (Pod, NodePool, Node) has a bad field;
    │   │                            ``field`` names it (``spec.containers[0].resources...``)
    │   ├── QuantityError            a resource quantity does not parse or is negative
    │   └── RequirementError         a node selector requirement is malformed (operator,
    │                                values, minValues)
    ├── CatalogError                 instance-type or price data is missing or inconsistent
    ├── CommandAbandonedError        a disruption command stopped before deleting anything;
    │                                its candidates were restored
    └── CloudProviderError           a cloud provider call failed (retried on the next pass)
        ├── InsufficientCapacityError  no option of a NodeClaim could be launched; the claim
        │                              is deleted and its pods provisioned again
        └── InstanceNotFoundError    the instance does not exist (a delete is then complete)

A pod that cannot be scheduled is *not* an error: the simulation returns it with a reason.
"""

from __future__ import annotations

__all__ = [
    "CatalogError",
    "CloudProviderError",
    "CommandAbandonedError",
    "InstanceNotFoundError",
    "InsufficientCapacityError",
    "InvalidFieldError",
    "ProvisionerError",
    "QuantityError",
    "RequirementError",
]


class ProvisionerError(Exception):
    """Base class of every error the provisioner raises on purpose."""


class InvalidFieldError(ProvisionerError, ValueError):
    """A field of a Kubernetes object is malformed; ``field`` is its path in the object."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class QuantityError(InvalidFieldError):
    """A Kubernetes resource quantity (``100m``, ``4Gi``) does not parse or is out of range."""


class RequirementError(InvalidFieldError):
    """A node selector requirement has a bad operator, values or minValues."""


class CatalogError(ProvisionerError):
    """Instance-type or price data is missing, corrupt or inconsistent."""


class CommandAbandonedError(ProvisionerError):
    """A disruption command stopped before deleting anything; its candidates were restored."""


class CloudProviderError(ProvisionerError):
    """A cloud provider call failed; the controller retries it on its next pass."""


class InsufficientCapacityError(CloudProviderError):
    """None of a NodeClaim's instance types has an available offering its requirements admit."""


class InstanceNotFoundError(CloudProviderError):
    """The instance is gone (or never existed): a delete is complete."""
