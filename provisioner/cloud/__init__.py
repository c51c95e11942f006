"""Cloud providers: the interface the controllers launch through, and its implementations.

- ``provider``: ``CloudProvider`` (create, delete, get, list, instance types) and ``Instance``.
- ``kwok``: the kwok provider (fake nodes on a cluster's kwok, the packaged AWS catalog).
"""

from provisioner.cloud.kwok import KwokProvider
from provisioner.cloud.provider import CloudProvider, Instance

__all__ = [
    "CloudProvider",
    "Instance",
    "KwokProvider",
]
