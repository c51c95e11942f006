"""The metrics adapter: an aiohttp server that is an aggregated API server for
`external.metrics.k8s.io/v1beta1` and `custom.metrics.k8s.io/v1beta1` + `v1beta2`.

It owns routes, discovery, authentication and authorization (front-proxy certificates,
TokenReview, SubjectAccessReview), Quantity formatting, label selectors, serving TLS, and the
metric sources: MetricSource objects (from the cluster through `kube`, or a standalone YAML
file) served through `scalers`' MetricCache, and prometheus-adapter style rules for custom
metrics. It talks to Kubernetes only through `kube`.
"""

from adapter.app import create_app
from adapter.auth import (
    ANONYMOUS,
    AccessDecision,
    AccessReviewer,
    AllowAll,
    Authenticator,
    Authorizer,
    BearerTokenAuthenticator,
    ChainAuthenticator,
    Credentials,
    SubjectAccessAuthorizer,
    TokenReviewer,
    UserInfo,
)
from adapter.controller import ControllerSettings, MetricSourceController
from adapter.errors import (
    AdapterError,
    BadRequestError,
    Details,
    ForbiddenError,
    InternalError,
    InvalidPathError,
    MethodNotAllowedError,
    MetricNotFoundError,
    NonFiniteValueError,
    NotFoundError,
    SelectorError,
    UnauthorizedError,
    UnavailableError,
)
from adapter.frontproxy import FrontProxyAuthenticator, RequestHeaderSettings
from adapter.kubeauth import (
    KubeAccessReviewer,
    KubeTokenReviewer,
    RequestHeaderWatcher,
    request_header_settings,
)
from adapter.metrics import AdapterMetrics, metrics_middleware
from adapter.metricsources import InvalidMetricSourceError, MetricSourceProvider
from adapter.metricsources import parse as parse_metric_source
from adapter.paths import Attributes, NonResourceAttributes, ResourceAttributes
from adapter.prometheus_custom import PrometheusCustomMetrics
from adapter.prometheus_rules import (
    CustomMetricsConfig,
    CustomMetricsConfigError,
    load_config,
    parse_config,
)
from adapter.providers import (
    CUSTOM_GROUP,
    EXTERNAL_GROUP,
    CustomMetricInfo,
    CustomMetrics,
    CustomSample,
    ExternalMetrics,
    ExternalSample,
    GroupResource,
    MetricRef,
    NoCustomMetrics,
    NoMetrics,
    ObjectReference,
)
from adapter.quantity import format_metric_value
from adapter.selectors import Operator, Requirement, Selector, parse_selector
from adapter.server import DEFAULT_PORT, AdapterServer
from adapter.standalone import load as load_standalone
from adapter.status import status_body
from adapter.tls import (
    SelfSignedPair,
    ServingCertificate,
    ServingPairPem,
    ServingSettings,
    ensure_self_signed,
    issue_serving_pair,
    serving_pair_problem,
)

__all__ = [
    "ANONYMOUS",
    "CUSTOM_GROUP",
    "DEFAULT_PORT",
    "EXTERNAL_GROUP",
    "AccessDecision",
    "AccessReviewer",
    "AdapterError",
    "AdapterMetrics",
    "AdapterServer",
    "AllowAll",
    "Attributes",
    "Authenticator",
    "Authorizer",
    "BadRequestError",
    "BearerTokenAuthenticator",
    "ChainAuthenticator",
    "ControllerSettings",
    "Credentials",
    "CustomMetricInfo",
    "CustomMetrics",
    "CustomMetricsConfig",
    "CustomMetricsConfigError",
    "CustomSample",
    "Details",
    "ExternalMetrics",
    "ExternalSample",
    "ForbiddenError",
    "FrontProxyAuthenticator",
    "GroupResource",
    "InternalError",
    "InvalidMetricSourceError",
    "InvalidPathError",
    "KubeAccessReviewer",
    "KubeTokenReviewer",
    "MethodNotAllowedError",
    "MetricNotFoundError",
    "MetricRef",
    "MetricSourceController",
    "MetricSourceProvider",
    "NoCustomMetrics",
    "NoMetrics",
    "NonFiniteValueError",
    "NonResourceAttributes",
    "NotFoundError",
    "ObjectReference",
    "Operator",
    "PrometheusCustomMetrics",
    "RequestHeaderSettings",
    "RequestHeaderWatcher",
    "Requirement",
    "ResourceAttributes",
    "Selector",
    "SelectorError",
    "SelfSignedPair",
    "ServingCertificate",
    "ServingPairPem",
    "ServingSettings",
    "SubjectAccessAuthorizer",
    "TokenReviewer",
    "UnauthorizedError",
    "UnavailableError",
    "UserInfo",
    "create_app",
    "ensure_self_signed",
    "format_metric_value",
    "issue_serving_pair",
    "load_config",
    "load_standalone",
    "metrics_middleware",
    "parse_config",
    "parse_metric_source",
    "parse_selector",
    "request_header_settings",
    "serving_pair_problem",
    "status_body",
]
