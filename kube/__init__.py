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
    Resource,
    connect,
)
from kube.errors import ApiError, ConfigError, ConflictError, GoneError, KubeError, NotFoundError
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
    "connect",
    "key_of",
    "record_event",
]
