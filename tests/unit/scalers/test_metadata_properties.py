"""Property tests: no metadata crashes validation, and every rejection names a key."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalers import ConfigError, MetadataReader, TriggerSpec, default_registry
from tests.unit.scalers.strategies import metadata_maps, metadata_values

REGISTRY = default_registry()
KNOWN_KEYS = {
    "cron": ["timezone", "start", "end", "desiredReplicas"],
    "prometheus": [
        "serverAddress",
        "query",
        "threshold",
        "activationThreshold",
        "namespace",
        "customHeaders",
        "queryParameters",
        "ignoreNullValues",
        "unsafeSsl",
        "timeout",
        "authModes",
        "cortexOrgID",
    ],
}
AUTH_KEYS = ["bearerToken", "username", "password", "cert", "key", "ca", "authModes"]
PLAUSIBLE = [
    "",
    "0",
    "1",
    "-1",
    "1.5",
    "1e3",
    "NaN",
    "inf",
    "true",
    "T",
    "3s",
    "1m30s",
    "500",
    "a=b,c=d",
    "a=b,c",
    "bearer",
    "basic,bearer",
    "tls",
    "http://127.0.0.1:9090",
    "https://user:pw@host:1/x",
    "http://h:99999",
    "Europe/Berlin",
    "../../etc/passwd",
    "0 * * * *",
    "*/5 * * * *",
    "0 0 31 2 *",
    "@daily",
    "-----BEGIN CERTIFICATE-----",
]


def maps(keys: list[str]) -> st.SearchStrategy[dict[str, str]]:
    return metadata_maps(keys, PLAUSIBLE)


@pytest.mark.parametrize("scaler_type", ["cron", "prometheus"])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_validation_only_raises_config_errors_that_name_a_key(
    scaler_type: str, data: st.DataObject
) -> None:
    metadata = data.draw(maps(KNOWN_KEYS[scaler_type]), label="metadata")
    drawn = data.draw(maps(AUTH_KEYS), label="auth")
    # Mark every secret so the check below cannot trip over a coincidental substring.
    auth = {k: v if k == "authModes" else f"{v}#secret#" for k, v in drawn.items()}
    error: ConfigError | None = None
    try:
        REGISTRY.validate(TriggerSpec(scaler_type, metadata, auth))
    except ConfigError as caught:
        error = caught
    if error is not None:
        assert error.key in metadata or error.key in auth or error.key in KNOWN_KEYS[scaler_type]
        assert str(error).startswith(f"{error.key}: ")
        if error.key in auth and error.key not in metadata and error.value is not None:
            assert error.value == "<redacted>"
        assert "#secret#" not in str(error) or "#secret#" in error.key


@settings(max_examples=300, deadline=None)
@given(value=metadata_values(PLAUSIBLE))
def test_typed_reads_never_crash(value: str) -> None:
    reader = MetadataReader({"k": value})
    for read in (
        lambda: reader.float_("k", default=1.0),
        lambda: reader.float_("k", positive=True),
        lambda: reader.int_("k", minimum=1),
        lambda: reader.bool_("k", default=False),
        lambda: reader.duration("k", default=1.0),
        lambda: reader.pairs("k"),
        lambda: reader.choices("k", {"a", "b"}),
    ):
        error: ConfigError | None = None
        try:
            read()
        except ConfigError as caught:
            error = caught
        if error is not None:
            assert error.key == "k"
            assert error.value == value


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=20))
def test_durations_are_positive_seconds(value: str) -> None:
    try:
        seconds = MetadataReader({"k": value}).duration("k", default=7.0)
    except ConfigError:
        return
    assert seconds > 0
