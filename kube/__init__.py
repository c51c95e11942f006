"""The one shared Kubernetes layer: client setup, raw JSON calls, informers (list + watch with
410 re-list) and leader election.

It imports nothing of ours, so every other package can stand on it.
"""

from kube.client import (
    CONFIGMAPS,
    EVENTS,
    JSON,
    LEASES,
    NODES,
    PODS,
    SECRETS,
    Api,
    ConnectSettings,
    Resource,
    connect,
    kubeconfig_path,
)
from kube.errors import (
    ApiError,
    ConfigError,
    ConflictError,
    GoneError,
    KubeError,
    NotFoundError,
    UnreachableError,
)
from kube.events import EventSeries, record_event
from kube.informer import Event, Informer, InformerSettings, key_of
from kube.leader import LeaderElector, LeaderSettings

__all__ = [
    "CONFIGMAPS",
    "EVENTS",
    "JSON",
    "LEASES",
    "NODES",
    "PODS",
    "SECRETS",
    "Api",
    "ApiError",
    "ConfigError",
    "ConflictError",
    "ConnectSettings",
    "Event",
    "EventSeries",
    "GoneError",
    "Informer",
    "InformerSettings",
    "KubeError",
    "LeaderElector",
    "LeaderSettings",
    "NotFoundError",
    "Resource",
    "UnreachableError",
    "connect",
    "key_of",
    "kubeconfig_path",
    "record_event",
]
