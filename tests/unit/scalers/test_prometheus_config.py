"""Prometheus trigger metadata and auth: KEDA's keys and defaults, errors naming the key."""

from __future__ import annotations

import base64

import pytest

from scalers import (
    ConfigError,
    FakeClock,
    PrometheusConfig,
    PrometheusScaler,
    ScalerContext,
    SessionPool,
    TriggerSpec,
)

BASE = {"serverAddress": "http://prometheus:9090", "query": "sum(up)", "threshold": "10"}
PEM_CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
PEM_KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"


def parse(metadata: dict[str, str], auth: dict[str, str] | None = None) -> PrometheusConfig:
    return PrometheusConfig.parse(TriggerSpec("prometheus", metadata, auth or {}))


def reject(metadata: dict[str, str], auth: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse(metadata, auth)
    return caught.value


def test_kedas_defaults() -> None:
    config = parse(BASE)
    assert str(config.server_address) == "http://prometheus:9090"
    assert config.query == "sum(up)"
    assert config.threshold == 10.0
    assert config.activation_threshold == 0.0
    assert config.namespace is None
    assert config.custom_headers == ()
    assert config.query_parameters == ()
    assert config.ignore_null_values is True
    assert config.unsafe_ssl is False
    assert config.timeout == 3.0
    assert config.auth_headers == ()


def test_every_key_parsed() -> None:
    config = parse(
        {
            **BASE,
            "activationThreshold": "2.5",
            "namespace": "team-a",
            "customHeaders": "X-Scope-OrgID=acme, X-Other = 1",
            "queryParameters": "dedup=false,partial_response=true",
            "ignoreNullValues": "false",
            "unsafeSsl": "True",
            "timeout": "1500",
        }
    )
    assert config.activation_threshold == 2.5
    assert config.namespace == "team-a"
    assert config.custom_headers == (("X-Scope-OrgID", "acme"), ("X-Other", "1"))
    assert config.query_parameters == (("dedup", "false"), ("partial_response", "true"))
    assert config.ignore_null_values is False
    assert config.unsafe_ssl is True
    assert config.timeout == 1.5


@pytest.mark.parametrize(("value", "seconds"), [("2s", 2.0), ("1m30s", 90.0), ("250ms", 0.25)])
def test_timeout_durations(value: str, seconds: float) -> None:
    assert parse({**BASE, "timeout": value}).timeout == seconds


@pytest.mark.parametrize("key", ["serverAddress", "query", "threshold"])
def test_required_keys(key: str) -> None:
    metadata = dict(BASE)
    del metadata[key]
    error = reject(metadata)
    assert (error.key, error.value) == (key, None)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        (
            "serverAddress",
            "prometheus:9090",
            "an http(s) URL such as http://prometheus.monitoring:9090",
        ),
        (
            "serverAddress",
            "ftp://prometheus",
            "an http(s) URL such as http://prometheus.monitoring:9090",
        ),
        (
            "serverAddress",
            "http://p:9090/?x=1",
            "an http(s) URL such as http://prometheus.monitoring:9090, without ?query or #fragment",
        ),
        ("threshold", "abc", "a positive number"),
        ("threshold", "0", "a positive number"),
        ("threshold", "-3", "a positive number"),
        ("threshold", "NaN", "a positive number"),
        ("threshold", "inf", "a positive number"),
        ("threshold", "1_000", "a positive number"),
        ("activationThreshold", "x", "a finite number"),
        ("ignoreNullValues", "yes", "a boolean (true or false)"),
        ("unsafeSsl", "2", "a boolean (true or false)"),
        (
            "timeout",
            "soon",
            "a positive duration such as 3s, 500ms or 1m30s (bare numbers are milliseconds)",
        ),
        (
            "timeout",
            "-1s",
            "a positive duration such as 3s, 500ms or 1m30s (bare numbers are milliseconds)",
        ),
        (
            "timeout",
            "0",
            "a positive duration such as 3s, 500ms or 1m30s (bare numbers are milliseconds)",
        ),
        ("customHeaders", "a=b,c", "comma-separated key=value pairs (k1=v1,k2=v2)"),
        ("queryParameters", "=x", "comma-separated key=value pairs (k1=v1,k2=v2)"),
        (
            "authModes",
            "kerberos",
            "a comma-separated list of: apiKey, basic, bearer, custom, oauth, tls",
        ),
        ("authModes", "oauth", "bearer, basic, tls and/or custom"),
        ("authModes", "bearer,basic", "at most one of bearer and basic"),
        (
            "cortexOrgID",
            "acme",
            "cortexOrgID to be unset (removed in KEDA 2.15; use customHeaders X-Scope-OrgID=...)",
        ),
        (
            "awsRegion",
            "eu-west-1",
            "awsRegion to be unset (AWS SigV4 pod identity is not supported)",
        ),
    ],
)
def test_bad_values_name_key_value_and_expectation(key: str, value: str, expected: str) -> None:
    error = reject({**BASE, key: value})
    assert (error.key, error.value, error.expected) == (key, value, expected)
    assert str(error) == f"{key}: got {value!r}, expected {expected}"


def test_unknown_metadata_key() -> None:
    error = reject({**BASE, "metricType": "Value"})
    assert (error.key, error.value) == ("metricType", "Value")
    assert error.expected.startswith("a known key (one of: ")
    assert "serverAddress" in error.expected


def test_generic_keda_keys_can_be_ignored() -> None:
    metadata = {**BASE, "scalerAddress": "updraft:9090", "enableTLS": "false"}
    PrometheusConfig.parse(
        TriggerSpec("prometheus", metadata), ignore={"scalerAddress", "enableTLS"}
    )
    assert reject(metadata).key == "enableTLS"


def test_credentials_in_the_server_address_are_refused_and_not_shown() -> None:
    error = reject({**BASE, "serverAddress": "http://admin:hunter2@prometheus:9090"})
    assert error.key == "serverAddress"
    assert error.value == "http://<redacted>@prometheus:9090"
    assert "hunter2" not in str(error)


def test_bearer() -> None:
    config = parse({**BASE, "authModes": "bearer"}, {"bearerToken": "tok"})
    assert config.auth_headers == (("Authorization", "Bearer tok"),)


def test_basic_with_modes_in_auth_params_and_empty_password() -> None:
    config = parse(BASE, {"authModes": "basic", "username": "me", "password": ""})
    token = base64.b64encode(b"me:").decode()
    assert config.auth_headers == (("Authorization", f"Basic {token}"),)


def test_custom_header_and_tls() -> None:
    config = parse(
        {**BASE, "authModes": "custom,tls"},
        {
            "customAuthHeader": "X-Api-Key",
            "customAuthValue": "k",
            "cert": PEM_CERT,
            "key": PEM_KEY,
            "ca": PEM_CERT,
        },
    )
    assert config.auth_headers == (("X-Api-Key", "k"),)
    assert (config.tls.cert, config.tls.key, config.tls.ca) == (PEM_CERT, PEM_KEY, PEM_CERT)
    assert "BEGIN" not in repr(config.tls)


def test_ca_is_honoured_without_auth_modes() -> None:
    assert parse(BASE, {"ca": PEM_CERT}).tls.ca == PEM_CERT


@pytest.mark.parametrize(
    ("modes", "auth", "key"),
    [
        ("bearer", {}, "bearerToken"),
        ("basic", {"password": "p"}, "username"),
        ("tls", {"cert": PEM_CERT}, "key"),
        ("tls", {"cert": "not pem", "key": PEM_KEY}, "cert"),
        ("custom", {"customAuthHeader": "X-A"}, "customAuthValue"),
        ("", {"bearerToken": "secret-value"}, "bearerToken"),
        ("bearer", {"bearerToken": "secret-value", "password": "secret-value"}, "password"),
        ("bearer", {"bearerToken": "secret-value", "apiKey": "secret-value"}, "apiKey"),
    ],
)
def test_auth_errors_name_the_key_and_never_show_the_value(
    modes: str, auth: dict[str, str], key: str
) -> None:
    metadata = {**BASE, "authModes": modes} if modes else BASE
    error = reject(metadata, auth)
    assert error.key == key
    assert error.value in (None, "<redacted>")
    assert "secret-value" not in str(error)
    assert "not pem" not in str(error)


def test_scaler_basics_and_repr_without_secrets() -> None:
    metadata = {**BASE, "activationThreshold": "3", "authModes": "bearer"}
    spec = TriggerSpec("prometheus", metadata, {"bearerToken": "tok-s3cret"})
    context = ScalerContext(clock=FakeClock(), sessions=SessionPool())
    scaler = PrometheusScaler.from_spec(spec, context=context)
    assert scaler.target == 10.0
    assert scaler.activation_target == 3.0
    assert scaler.timeout == 3.0
    assert scaler.metric_name.startswith("prometheus-")
    assert len(scaler.metric_name) == len("prometheus-") + 10
    # The name depends on what is measured, not on credentials or thresholds.
    same = TriggerSpec("prometheus", {**BASE, "threshold": "5"})
    assert PrometheusScaler.from_spec(same, context=context).metric_name == scaler.metric_name
    other = TriggerSpec("prometheus", {**BASE, "query": "sum(down)"})
    assert PrometheusScaler.from_spec(other, context=context).metric_name != scaler.metric_name
    assert "tok-s3cret" not in repr(scaler)
    assert "tok-s3cret" not in repr(scaler.config)
