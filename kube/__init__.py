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
    InvalidObjectError,
    KubeError,
    NotFoundError,
    UnreachableError,
)
from kube.events import EventSeries, record_event
from kube.informer import Event, Handler, Informer, InformerSettings, key_of
from kube.leader import LeaderElector, LeaderSettings
from kube.reviews import request_header_trust, subject_access_review, token_review
from kube.views import ObjectMeta, name_of, scalar, section, version_of

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
    "Handler",
    "Informer",
    "InformerSettings",
    "InvalidObjectError",
    "KubeError",
    "LeaderElector",
    "LeaderSettings",
    "NotFoundError",
    "ObjectMeta",
    "Resource",
    "UnreachableError",
    "connect",
    "key_of",
    "kubeconfig_path",
    "name_of",
    "record_event",
    "request_header_trust",
    "scalar",
    "section",
    "subject_access_review",
    "token_review",
    "version_of",
]
