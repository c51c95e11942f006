"""The ``prometheus`` scaler: one instant query, one number.

Keys, defaults and auth modes follow KEDA's Prometheus scaler, so a trigger moves over unchanged;
where KEDA silently returns 0 for a result that is not one number (a range vector, a scalar it
cannot decode) this scaler says what is wrong. It sends ``GET {serverAddress}/api/v1/query``
without ``time=``, so Prometheus evaluates at its own now and clock skew cannot shift results.
Sessions come from the shared ``SessionPool``; this module must not open its own.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection
from dataclasses import dataclass, field

from yarl import URL

from scalers.base import ConfiguredScaler, Measurement, ScalerContext, dns_safe_name
from scalers.errors import REDACTED, BadResultError, ConfigError
from scalers.metadata import MetadataReader
from scalers.prometheus_client import (
    PrometheusAuth,
    PrometheusClient,
    Sample,
    decode_answer,
    instant_samples,
)
from scalers.sessions import TlsMaterial
from scalers.spec import TriggerSpec

__all__ = ["PrometheusConfig", "PrometheusScaler", "read_result"]

DEFAULT_TIMEOUT = 3.0
"""Seconds; KEDA's ``KEDA_HTTP_DEFAULT_TIMEOUT`` (3000 ms), which also fits the 3 s budget KEDA's
metrics server gives a whole external-scaler round trip."""

_AUTH_MODES = frozenset({"bearer", "basic", "tls", "custom", "apiKey", "oauth"})
_UNSUPPORTED_MODES = {"apiKey": "not supported by KEDA's Prometheus scaler either", "oauth": ""}
_AUTH_KEYS_BY_MODE = {
    "bearer": ("bearerToken",),
    "basic": ("username", "password"),
    "tls": ("cert", "key"),
    "custom": ("customAuthHeader", "customAuthValue"),
}
_ERROR_TEXT_MAX = 300


def _shown_address(value: str) -> str:
    """``value`` with any user:password@ replaced, for messages."""
    scheme, sep, rest = value.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://{REDACTED}@{rest.split('@', 1)[1]}"
    return value


def _server_address(reader: MetadataReader) -> URL:
    key = "serverAddress"
    expected = "an http(s) URL such as http://prometheus.monitoring:9090"
    value = reader.required_str(key, expected=expected)
    try:
        url = URL(value)
        valid = url.scheme in ("http", "https") and bool(url.host) and url.port is not None
    except (ValueError, TypeError, UnicodeError):
        valid = False
    if not valid:
        raise reader.error(key, _shown_address(value), expected)
    if url.user is not None or url.password is not None:
        raise reader.error(
            key, _shown_address(value), "a URL without credentials (use authModes: basic)"
        )
    if url.query_string or url.fragment:
        raise reader.error(key, value, f"{expected}, without ?query or #fragment")
    return url


@dataclass(frozen=True, slots=True, repr=False)
class PrometheusConfig:
    server_address: URL
    query: str
    threshold: float
    activation_threshold: float = 0.0
    namespace: str | None = None
    custom_headers: tuple[tuple[str, str], ...] = ()
    query_parameters: tuple[tuple[str, str], ...] = ()
    ignore_null_values: bool = True
    unsafe_ssl: bool = False
    timeout: float = DEFAULT_TIMEOUT
    auth_headers: tuple[tuple[str, str], ...] = field(default=())
    """Headers that carry credentials; never shown."""
    tls: TlsMaterial = field(default_factory=TlsMaterial)

    def __repr__(self) -> str:
        address = str(self.server_address)
        return f"PrometheusConfig(server_address={address!r}, query={self.query!r})"

    @classmethod
    def parse(cls, spec: TriggerSpec, *, ignore: Collection[str] = ()) -> PrometheusConfig:
        meta = MetadataReader(spec.metadata, ignore=ignore)
        server = _server_address(meta)
        query = meta.required_str("query", expected="a PromQL expression")
        threshold = meta.float_("threshold", positive=True)
        activation = meta.float_("activationThreshold", default=0.0)
        namespace = meta.optional_str("namespace")
        headers = meta.pairs("customHeaders")
        parameters = meta.pairs("queryParameters")
        ignore_nulls = meta.bool_("ignoreNullValues", default=True)
        unsafe = meta.bool_("unsafeSsl", default=False)
        timeout = meta.duration("timeout", default=DEFAULT_TIMEOUT)
        meta.unsupported("awsRegion", "AWS SigV4 pod identity is not supported")
        meta.unsupported("identityOwner", "pod identity is not supported")
        meta.unsupported("cortexOrgID", "removed in KEDA 2.15; use customHeaders X-Scope-OrgID=...")
        meta.unsupported("metricName", "removed in KEDA 2.12; names are generated")
        auth_headers, tls = _parse_auth(meta, MetadataReader(spec.auth, secret=True))
        meta.reject_unknown()
        return cls(
            server_address=server,
            query=query,
            threshold=threshold,
            activation_threshold=activation,
            namespace=namespace,
            custom_headers=headers,
            query_parameters=parameters,
            ignore_null_values=ignore_nulls,
            unsafe_ssl=unsafe,
            timeout=timeout,
            auth_headers=auth_headers,
            tls=tls,
        )


def _parse_auth(
    meta: MetadataReader, auth: MetadataReader
) -> tuple[tuple[tuple[str, str], ...], TlsMaterial]:
    # authModes may sit in metadata or in the TriggerAuthentication params, as in KEDA.
    modes = meta.choices("authModes", _AUTH_MODES) or auth.choices("authModes", _AUTH_MODES)
    key = "authModes"
    reader = meta if meta.has(key) else auth
    for mode in modes:
        if mode in _UNSUPPORTED_MODES:
            raise reader.error(key, ",".join(modes), "bearer, basic, tls and/or custom")
    if "bearer" in modes and "basic" in modes:
        raise reader.error(key, ",".join(modes), "at most one of bearer and basic")
    bearer = auth.required_str("bearerToken") if "bearer" in modes else None
    basic = None
    if "basic" in modes:
        basic = (auth.required_str("username"), auth.optional_str("password") or "")
    custom = None
    if "custom" in modes:
        name = auth.required_str("customAuthHeader", expected="an HTTP header name")
        custom = (name, auth.required_str("customAuthValue"))
    tls = TlsMaterial()
    ca = auth.optional_str("ca")
    pem = "PEM text (-----BEGIN ...)"
    if ca is not None and "-----BEGIN" not in ca:
        raise auth.error("ca", ca, pem)
    if "tls" in modes:
        cert = auth.required_str("cert", expected=pem)
        private_key = auth.required_str("key", expected=pem)
        for name, value in (("cert", cert), ("key", private_key)):
            if "-----BEGIN" not in value:
                raise auth.error(name, value, pem)
        tls = TlsMaterial(ca=ca, cert=cert, key=private_key)
    elif ca is not None:
        tls = TlsMaterial(ca=ca)
    # Credentials given for a mode that is not enabled would be silently unused: say so.
    for mode, keys in _AUTH_KEYS_BY_MODE.items():
        for name in keys:
            if mode not in modes and auth.raw(name) is not None:
                raise auth.error(name, auth.raw(name), f"authModes to include {mode}")
    auth.reject_unknown()
    return PrometheusAuth.build(bearer_token=bearer, basic=basic, custom=custom).headers, tls


def read_result(status: int, body: bytes, *, what: str, ignore_null_values: bool) -> float:
    """The one number in an ``/api/v1/query`` answer, or the error that says why there is none.

    ``what`` starts every message (it names the query and server). Empty vectors and NaN/Inf
    are 0 when ``ignore_null_values``; several series, range vectors and strings never are.
    """
    data = decode_answer(status, body, what=what)
    return _one_value(instant_samples(data, what=what, scalar=True), what, ignore_null_values)


def _one_value(samples: list[Sample], what: str, ignore_null_values: bool) -> float:
    def null(why: str) -> float:
        if ignore_null_values:
            return 0.0
        raise BadResultError(f"{what}: {why} and ignoreNullValues is false")

    if len(samples) > 1:
        raise BadResultError(
            f"{what}: returned {len(samples)} series; expected exactly one "
            "(aggregate it, e.g. with sum())"
        )
    if not samples:
        return null("returned an empty vector (the target may be lost)")
    value = samples[0].value
    if not math.isfinite(value):
        return null(f"returned {value}")
    return value


class PrometheusScaler(ConfiguredScaler[PrometheusConfig]):
    type_name = "prometheus"
    config_type = PrometheusConfig

    def __init__(self, config: PrometheusConfig, *, context: ScalerContext) -> None:
        super().__init__(config, context=context)
        self.timeout = config.timeout
        self.target = config.threshold
        self.activation_target = config.activation_threshold
        identity = "\x00".join(
            [
                str(config.server_address),
                config.query,
                config.namespace or "",
                repr(config.query_parameters),
            ]
        )
        digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        self.metric_name = dns_safe_name(f"prometheus-{digest}")
        auth = PrometheusAuth(
            headers=config.auth_headers, tls=config.tls, unsafe_ssl=config.unsafe_ssl
        )
        self._client = PrometheusClient(
            config.server_address,
            sessions=context.sessions,
            auth=auth,
            headers=config.custom_headers,
            timeout=config.timeout,
        )
        params: list[tuple[str, str]] = []
        if config.namespace is not None:
            params.append(("namespace", config.namespace))
        params.extend(config.query_parameters)
        self._params = tuple(params)
        shown = config.query if len(config.query) <= 120 else config.query[:117] + "..."
        self._what = f"prometheus query {shown!r} at {self._client.origin}"

    async def measure(self) -> Measurement:
        try:
            self._client.session()
        except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
            expected = f"a PEM certificate, key and CA that load ({type(error).__name__})"
            raise ConfigError("cert", REDACTED, expected, in_auth=True) from None
        samples = await self._client.query(
            self.config.query, what=self._what, params=self._params, scalar=True
        )
        value = _one_value(samples, self._what, self.config.ignore_null_values)
        active = value > self.activation_target
        return Measurement(value=value, active=active, at=self._context.clock.now())

    async def close(self) -> None:
        await self._client.close()
