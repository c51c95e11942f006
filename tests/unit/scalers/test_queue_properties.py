"""Property tests for the queue scalers: no metadata or auth crashes validation, every rejection
names a key, and no auth value shows in the message."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalers import ConfigError, TriggerSpec, default_registry
from tests.unit.scalers.strategies import metadata_maps

REGISTRY = default_registry()
CONNECTION = ["address", "host", "port", "databaseIndex", "username", "enableTLS", "unsafeSsl"]
KNOWN_KEYS = {
    "redis": [*CONNECTION, "listName", "listLength", "activationListLength"],
    "redis-streams": [
        *CONNECTION,
        "stream",
        "consumerGroup",
        "pendingEntriesCount",
        "streamLength",
        "lagCount",
        "activationLagCount",
    ],
    "postgresql": [
        "query",
        "targetQueryValue",
        "activationTargetQueryValue",
        "host",
        "port",
        "userName",
        "dbName",
        "sslmode",
    ],
    "aws-sqs-queue": [
        "queueURL",
        "awsRegion",
        "queueLength",
        "activationQueueLength",
        "scaleOnInFlight",
        "scaleOnDelayed",
        "awsEndpoint",
        "identityOwner",
    ],
    "nats-jetstream": [
        "natsServerMonitoringEndpoint",
        "natsServerAddress",
        "account",
        "stream",
        "consumer",
        "lagThreshold",
        "activationLagThreshold",
        "useHttps",
    ],
    "rabbitmq": [
        "host",
        "queueName",
        "protocol",
        "mode",
        "value",
        "activationValue",
        "queueLength",
        "vhostName",
        "useRegex",
        "pageSize",
        "operation",
        "excludeUnacknowledged",
        "timeout",
        "unsafeSsl",
    ],
}
AUTH_KEYS = [
    "password",
    "username",
    "tls",
    "ca",
    "connection",
    "host",
    "awsAccessKeyID",
    "awsSecretAccessKey",
    "awsSessionToken",
    "token",
]
PLAUSIBLE = [
    "",
    "0",
    "1",
    "-1",
    "1.5",
    "1e3",
    "NaN",
    "true",
    "enable",
    "3s",
    "r:6379",
    "[::1]:6379",
    ":6379",
    "r:",
    "amqp://u:p@mq:5672/v",
    "amqps://mq/%2F",
    "http://mq:15672/a/b",
    "https://u:p@h:99999",
    "nats://n:4222",
    "n:8222",
    "postgres://u:p@db:5432/d?sslmode=require",
    "host=db password='x",
    "host=db port=70000",
    "https://sqs.eu-west-1.amazonaws.com/1/q",
    "QueueLength",
    "MessageRate",
    "sum",
    "$G",
]


def maps(keys: list[str]) -> st.SearchStrategy[dict[str, str]]:
    return metadata_maps(keys, PLAUSIBLE)


@pytest.mark.parametrize("scaler_type", sorted(KNOWN_KEYS))
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_validation_only_raises_config_errors_that_name_a_key(
    scaler_type: str, data: st.DataObject
) -> None:
    metadata = data.draw(maps(KNOWN_KEYS[scaler_type]), label="metadata")
    drawn = data.draw(maps(AUTH_KEYS), label="auth")
    auth = {k: f"{v}#secret#" for k, v in drawn.items()}
    error: ConfigError | None = None
    try:
        REGISTRY.validate(TriggerSpec(scaler_type, metadata, auth))
    except ConfigError as caught:
        error = caught
    if error is not None:
        # A key the input holds, or one the scaler knows that is missing (a metadata key or an
        # auth key such as awsSecretAccessKey when only awsAccessKeyID was given).
        known = (*KNOWN_KEYS[scaler_type], *AUTH_KEYS)
        assert error.key in metadata or error.key in auth or error.key in known
        assert str(error).startswith(f"{error.key}: ")
        assert "#secret#" not in str(error) or "#secret#" in error.key
