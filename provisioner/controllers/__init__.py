"""The provisioner's controllers: everything that talks to the API server and a cloud provider.

- ``state``, ``batching``, ``provisioning``: informers, batch windows, one provisioning pass.
- ``lifecycle``, ``nodepools``: NodeClaim launch/registration/initialization/termination,
  NodePool validation and status.
- ``manager``, ``metrics``: the leader-elected assembly and its Prometheus metrics.

They stand on the pure core (``model``, ``requirements``, ``catalog``, ``scheduling``) and on
``cloud``; nothing below them imports them.
"""

from provisioner.controllers.disruption import DisruptionSettings
from provisioner.controllers.manager import ProvisionerController, ProvisionerSettings
from provisioner.controllers.metrics import REGISTRY as METRICS_REGISTRY

__all__ = [
    "METRICS_REGISTRY",
    "DisruptionSettings",
    "ProvisionerController",
    "ProvisionerSettings",
]
