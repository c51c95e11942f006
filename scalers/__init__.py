"""Scalers: the trigger model, the scaler implementations and the cache both front doors share.

``scalers`` owns turning a trigger (``TriggerSpec``: KEDA-style type, metadata and auth) into a
``Measurement``: validation (``Registry``), measuring (``Scaler`` subclasses: cron, Prometheus)
and deciding when to measure (``MetricCache``: freshness, single-flight, stale-on-error,
fallback). It must not know about HTTP routes, gRPC or Kubernetes objects (those are the front
doors' and ``kube``'s), and imports nothing of ours but ``kube``.
"""

from scalers.base import Measurement, Scaler, ScalerContext, dns_safe_name
from scalers.cache import CacheMetrics, CacheSettings, Fallback, MetricCache, TriggerPolicy
from scalers.clock import Clock, FakeClock, SystemClock
from scalers.cron import CronConfig, CronScaler
from scalers.errors import (
    AuthError,
    BadResponseError,
    BadResultError,
    ConfigError,
    ScalerError,
    UnavailableError,
    UpstreamError,
)
from scalers.metadata import KEDA_EXTERNAL_KEYS, MetadataReader
from scalers.prometheus import PrometheusConfig, PrometheusScaler
from scalers.registry import Registry, default_registry
from scalers.sessions import SessionLease, SessionPool, TlsMaterial
from scalers.spec import SpecIdentity, TriggerSpec

__all__ = [
    "KEDA_EXTERNAL_KEYS",
    "AuthError",
    "BadResponseError",
    "BadResultError",
    "CacheMetrics",
    "CacheSettings",
    "Clock",
    "ConfigError",
    "CronConfig",
    "CronScaler",
    "FakeClock",
    "Fallback",
    "Measurement",
    "MetadataReader",
    "MetricCache",
    "PrometheusConfig",
    "PrometheusScaler",
    "Registry",
    "Scaler",
    "ScalerContext",
    "ScalerError",
    "SessionLease",
    "SessionPool",
    "SpecIdentity",
    "SystemClock",
    "TlsMaterial",
    "TriggerPolicy",
    "TriggerSpec",
    "UnavailableError",
    "UpstreamError",
    "default_registry",
    "dns_safe_name",
]
