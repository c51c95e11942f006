"""Scalers: the trigger model, the scaler implementations and the cache both front doors share.

``scalers`` owns turning a trigger (``TriggerSpec``: KEDA-style type, metadata and auth) into a
``Measurement``: validation (``Registry``), measuring (``Scaler`` subclasses: cron, Prometheus,
and the queue-depth scalers: Redis lists and streams, PostgreSQL, SQS, NATS JetStream, RabbitMQ)
and deciding when to measure (``MetricCache``: freshness, single-flight, stale-on-error,
fallback). It must not know about HTTP routes, gRPC or Kubernetes objects: those belong to the
two front doors (``adapter``, and ``keda`` for KEDA's gRPC protocol) and to ``kube``. The package
imports nothing of ours but ``kube`` and ``kits``.
"""

# The clock is kits.clock's; re-exported so `from scalers import FakeClock` keeps working.
from kits import Clock, FakeClock, SystemClock
from scalers.base import Measurement, Scaler, ScalerContext, dns_safe_name
from scalers.cache import CacheMetrics, CacheSettings, Fallback, MetricCache, TriggerPolicy
from scalers.clients import ClientLease, ClientPool, client_pool
from scalers.cron import CronConfig, CronScaler
from scalers.depth import DepthScaler
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
from scalers.nats_jetstream import NatsJetStreamConfig, NatsJetStreamScaler
from scalers.postgresql import PostgresConfig, PostgresScaler
from scalers.prometheus import PrometheusConfig, PrometheusScaler
from scalers.prometheus_client import PrometheusAuth, PrometheusClient, RangeSeries
from scalers.rabbitmq import RabbitMQConfig, RabbitMQScaler
from scalers.redis_connection import RedisConnection
from scalers.redis_lists import RedisListConfig, RedisListScaler
from scalers.redis_streams import RedisStreamConfig, RedisStreamMode, RedisStreamScaler
from scalers.registry import Registry, default_registry
from scalers.sessions import SessionLease, SessionPool, TlsMaterial, ssl_context
from scalers.spec import SpecIdentity, TriggerSpec
from scalers.sqs import SqsConfig, SqsScaler

__all__ = [
    "KEDA_EXTERNAL_KEYS",
    "AuthError",
    "BadResponseError",
    "BadResultError",
    "CacheMetrics",
    "CacheSettings",
    "ClientLease",
    "ClientPool",
    "Clock",
    "ConfigError",
    "CronConfig",
    "CronScaler",
    "DepthScaler",
    "FakeClock",
    "Fallback",
    "Measurement",
    "MetadataReader",
    "MetricCache",
    "NatsJetStreamConfig",
    "NatsJetStreamScaler",
    "PostgresConfig",
    "PostgresScaler",
    "PrometheusAuth",
    "PrometheusClient",
    "PrometheusConfig",
    "PrometheusScaler",
    "RabbitMQConfig",
    "RabbitMQScaler",
    "RangeSeries",
    "RedisConnection",
    "RedisListConfig",
    "RedisListScaler",
    "RedisStreamConfig",
    "RedisStreamMode",
    "RedisStreamScaler",
    "Registry",
    "Scaler",
    "ScalerContext",
    "ScalerError",
    "SessionLease",
    "SessionPool",
    "SpecIdentity",
    "SqsConfig",
    "SqsScaler",
    "SystemClock",
    "TlsMaterial",
    "TriggerPolicy",
    "TriggerSpec",
    "UnavailableError",
    "UpstreamError",
    "client_pool",
    "default_registry",
    "dns_safe_name",
    "ssl_context",
]
