"""Queue scalers' metadata and auth: KEDA's keys and defaults, errors naming the key, no secret
in any message."""

from __future__ import annotations

import pytest

from scalers import ConfigError, TriggerSpec, default_registry
from scalers.nats_jetstream import NatsJetStreamConfig, consumer_lag
from scalers.postgresql import PostgresConfig, parse_connection_string
from scalers.rabbitmq import RabbitMQConfig
from scalers.redis_lists import RedisListConfig
from scalers.redis_streams import RedisStreamConfig, RedisStreamMode
from scalers.sqs import SqsConfig

SECRET = "pw-s3cret"


def reject(kind: str, metadata: dict[str, str], auth: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        default_registry().validate(TriggerSpec(kind, metadata, auth or {}))
    assert SECRET not in str(caught.value)
    return caught.value


def test_every_queue_type_is_registered() -> None:
    types = set(default_registry().types())
    expected = {"redis", "redis-streams", "rabbitmq", "nats-jetstream", "aws-sqs-queue"}
    assert expected | {"postgresql"} <= types


# -- redis -----------------------------------------------------------------------------------


def test_redis_defaults() -> None:
    config = RedisListConfig.parse(TriggerSpec("redis", {"address": "r:6379", "listName": "q"}))
    assert (config.list_length, config.activation_list_length) == (5, 0)
    c = config.connection
    assert (c.host, c.port, c.database, c.username, c.password, c.tls) == (
        "r",
        6379,
        0,
        None,
        None,
        False,
    )


def test_redis_host_port_auth_and_tls() -> None:
    spec = TriggerSpec(
        "redis",
        {
            "host": "r",
            "port": "6380",
            "listName": "q",
            "listLength": "7",
            "activationListLength": "2",
            "databaseIndex": "3",
            "username": "me",
            "unsafeSsl": "true",
        },
        {"password": SECRET, "tls": "enable"},
    )
    config = RedisListConfig.parse(spec)
    c = config.connection
    assert (config.list_length, config.activation_list_length) == (7, 2)
    assert (c.host, c.port, c.database, c.username, c.tls, c.unsafe_ssl) == (
        "r",
        6380,
        3,
        "me",
        True,
        True,
    )
    assert SECRET not in repr(config)
    assert SECRET not in repr(c)


@pytest.mark.parametrize(
    ("metadata", "auth", "key"),
    [
        ({"address": "r:6379"}, {}, "listName"),
        ({"listName": "q"}, {}, "address"),
        ({"host": "r", "listName": "q"}, {}, "port"),
        ({"address": "r", "listName": "q"}, {}, "address"),
        ({"address": "r:99999", "listName": "q"}, {}, "address"),
        # str.isdigit() takes a superscript one, int() does not (found by the property test).
        ({"host": "0", "port": "\u00b9", "listName": "q"}, {}, "port"),
        ({"address": "r:1", "host": "r", "listName": "q"}, {}, "address"),
        ({"address": "r:1", "listName": "q", "listLength": "0"}, {}, "listLength"),
        (
            {"address": "r:1", "listName": "q", "activationListLength": "x"},
            {},
            "activationListLength",
        ),
        ({"address": "r:1", "listName": "q", "databaseIndex": "-1"}, {}, "databaseIndex"),
        ({"address": "r:1", "listName": "q", "password": SECRET}, {}, "password"),
        ({"address": "r:1", "listName": "q", "enableTLS": "yes"}, {}, "enableTLS"),
        ({"address": "r:1", "listName": "q", "enableTLS": "true"}, {"tls": "enable"}, "tls"),
        ({"address": "r:1", "listName": "q"}, {"cert": SECRET}, "cert"),
        ({"address": "r:1", "listName": "q"}, {"passwd": SECRET}, "passwd"),
        ({"addresses": "r:1,s:1", "listName": "q"}, {}, "addresses"),
        ({"address": "r:1", "listName": "q", "listname": "typo"}, {}, "listname"),
    ],
)
def test_redis_errors_name_the_key(
    metadata: dict[str, str], auth: dict[str, str], key: str
) -> None:
    assert reject("redis", metadata, auth).key == key


def test_redis_streams_modes() -> None:
    base = {"address": "r:6379", "stream": "s"}

    def parse(**extra: str) -> RedisStreamConfig:
        return RedisStreamConfig.parse(TriggerSpec("redis-streams", {**base, **extra}))

    assert (parse().mode, parse().target) == (RedisStreamMode.STREAM_LENGTH, 5)
    assert parse(streamLength="9").target == 9
    pending = parse(consumerGroup="g", pendingEntriesCount="4")
    assert (pending.mode, pending.target) == (RedisStreamMode.PENDING_ENTRIES, 4)
    lag = parse(consumerGroup="g", lagCount="3", activationLagCount="1")
    assert (lag.mode, lag.target, lag.activation_lag_count) == (RedisStreamMode.LAG, 3, 1)
    assert parse(consumerGroup="g", lagCount="0").mode is RedisStreamMode.PENDING_ENTRIES
    assert reject("redis-streams", {"address": "r:1"}).key == "stream"
    assert reject("redis-streams", {**base, "lagCount": "-1"}).key == "lagCount"


# -- postgresql ------------------------------------------------------------------------------

PG = {"host": "db", "userName": "u", "dbName": "d", "query": "SELECT 1", "targetQueryValue": "2"}


def test_postgresql_fields() -> None:
    config = PostgresConfig.parse(TriggerSpec("postgresql", PG, {"password": SECRET}))
    assert (config.host, config.port, config.user, config.database) == ("db", 5432, "u", "d")
    assert (config.target, config.activation_target, config.sslmode) == (2.0, 0.0, None)
    assert SECRET not in repr(config)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"host=db port=5433 user=u password='{SECRET}' dbname=d sslmode=require",
            {
                "host": "db",
                "port": "5433",
                "user": "u",
                "password": SECRET,
                "database": "d",
                "ssl": "require",
            },
        ),
        ("host = db password='it\\'s'", {"host": "db", "password": "it's"}),
        (
            f"postgresql://u:{SECRET}@db:5433/d?sslmode=disable",
            {
                "host": "db",
                "port": "5433",
                "user": "u",
                "password": SECRET,
                "database": "d",
                "ssl": "disable",
            },
        ),
    ],
)
def test_connection_strings(text: str, expected: dict[str, str]) -> None:
    assert parse_connection_string(text) == expected


@pytest.mark.parametrize(
    ("metadata", "auth", "key"),
    [
        ({k: v for k, v in PG.items() if k != "query"}, {}, "query"),
        ({k: v for k, v in PG.items() if k != "targetQueryValue"}, {}, "targetQueryValue"),
        ({**PG, "targetQueryValue": "0"}, {}, "targetQueryValue"),
        ({**PG, "activationTargetQueryValue": "many"}, {}, "activationTargetQueryValue"),
        ({**PG, "port": "five"}, {}, "port"),
        # str.isdigit() takes a superscript one, int() does not (found by the property test).
        ({**PG, "port": "\u00b9"}, {}, "port"),
        ({**PG, "sslmode": "sometimes"}, {}, "sslmode"),
        ({**PG, "connection": f"password={SECRET}"}, {}, "connection"),
        ({"query": "SELECT 1", "targetQueryValue": "1"}, {}, "host"),
        (
            {"query": "SELECT 1", "targetQueryValue": "1"},
            {"connection": f"host=db pass={SECRET}"},
            "connection",
        ),
    ],
)
def test_postgresql_errors_name_the_key(
    metadata: dict[str, str], auth: dict[str, str], key: str
) -> None:
    assert reject("postgresql", metadata, auth).key == key


# -- SQS -------------------------------------------------------------------------------------

SQS_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"


def test_sqs_defaults() -> None:
    spec = TriggerSpec("aws-sqs-queue", {"queueURL": SQS_URL, "awsRegion": "eu-west-1"})
    config = SqsConfig.parse(spec)
    assert (config.queue_name, config.queue_url, config.queue_length) == ("jobs", SQS_URL, 5)
    assert (config.activation_queue_length, config.scale_on_in_flight) == (0, True)
    assert (config.scale_on_delayed, config.endpoint, config.access_key_id) == (False, None, None)
    scaler = default_registry().get("aws-sqs-queue")
    assert scaler.__name__ == "SqsScaler"


@pytest.mark.parametrize(
    ("metadata", "auth", "key"),
    [
        ({"awsRegion": "eu-west-1"}, {}, "queueURL"),
        ({"queueURL": SQS_URL}, {}, "awsRegion"),
        ({"queueURL": "a/b", "awsRegion": "r"}, {}, "queueURL"),
        ({"queueURL": SQS_URL, "awsRegion": "r", "queueLength": "0"}, {}, "queueLength"),
        ({"queueURL": SQS_URL, "awsRegion": "r", "scaleOnInFlight": "no"}, {}, "scaleOnInFlight"),
        ({"queueURL": SQS_URL, "awsRegion": "r", "awsEndpoint": "moto:5000"}, {}, "awsEndpoint"),
        ({"queueURL": SQS_URL, "awsRegion": "r"}, {"awsAccessKeyID": "AKID"}, "awsSecretAccessKey"),
        ({"queueURL": SQS_URL, "awsRegion": "r"}, {"awsSecretAccessKey": SECRET}, "awsAccessKeyID"),
        (
            {"queueURL": SQS_URL, "awsRegion": "r"},
            {"awsRoleArn": "arn:aws:iam::1:role/x"},
            "awsRoleArn",
        ),
    ],
)
def test_sqs_errors_name_the_key(metadata: dict[str, str], auth: dict[str, str], key: str) -> None:
    assert reject("aws-sqs-queue", metadata, auth).key == key


# -- NATS JetStream --------------------------------------------------------------------------

NATS = {
    "natsServerMonitoringEndpoint": "nats:8222",
    "account": "$G",
    "stream": "s",
    "consumer": "c",
}


def test_nats_defaults() -> None:
    config = NatsJetStreamConfig.parse(TriggerSpec("nats-jetstream", NATS))
    assert (config.lag_threshold, config.activation_lag_threshold) == (10, 0)
    assert (config.monitoring_url, config.account) == ("http://nats:8222", "$G")
    https = NatsJetStreamConfig.parse(TriggerSpec("nats-jetstream", {**NATS, "useHttps": "true"}))
    assert https.monitoring_url == "https://nats:8222"


@pytest.mark.parametrize(
    ("metadata", "auth", "key"),
    [
        ({k: v for k, v in NATS.items() if k != "stream"}, {}, "stream"),
        ({k: v for k, v in NATS.items() if k != "consumer"}, {}, "consumer"),
        ({k: v for k, v in NATS.items() if k != "account"}, {}, "account"),
        (
            {**NATS, "natsServerMonitoringEndpoint": "http://nats:8222"},
            {},
            "natsServerMonitoringEndpoint",
        ),
        ({**NATS, "natsServerAddress": "nats://n:4222"}, {}, "natsServerMonitoringEndpoint"),
        ({**NATS, "lagThreshold": "0"}, {}, "lagThreshold"),
        (NATS, {"password": SECRET}, "password"),
        (
            {"natsServerAddress": "http://n:4222", "stream": "s", "consumer": "c"},
            {},
            "natsServerAddress",
        ),
    ],
)
def test_nats_errors_name_the_key(metadata: dict[str, str], auth: dict[str, str], key: str) -> None:
    assert reject("nats-jetstream", metadata, auth).key == key


def test_consumer_lag_from_jsz() -> None:
    consumer = {"name": "c", "num_pending": 3, "num_ack_pending": 2}
    document = {
        "account_details": [
            {
                "name": "$G",
                "id": "$G",
                "stream_detail": [{"name": "s", "consumer_detail": [consumer]}],
            }
        ]
    }
    assert consumer_lag(document, account="$G", stream="s", consumer="c") == 5.0
    assert consumer_lag(document, account="$G", stream="s", consumer="x") == (
        "consumer 'x' not found in stream 's'"
    )
    assert consumer_lag(document, account="$G", stream="t", consumer="c") == (
        "stream 't' not found in account '$G'"
    )
    assert consumer_lag({}, account="A", stream="s", consumer="c") == (
        "account 'A' not found (or it has no JetStream streams)"
    )


# -- RabbitMQ --------------------------------------------------------------------------------


def test_rabbitmq_defaults_and_vhosts() -> None:
    def parse(metadata: dict[str, str], auth: dict[str, str] | None = None) -> RabbitMQConfig:
        return RabbitMQConfig.parse(TriggerSpec("rabbitmq", metadata, auth or {}))

    amqp = parse({"queueName": "q"}, {"host": f"amqp://u:{SECRET}@mq:5672/team%2Fa"})
    assert (amqp.protocol, amqp.mode, amqp.value, amqp.activation_value) == (
        "amqp",
        "QueueLength",
        20.0,
        0.0,
    )
    assert (amqp.vhost, amqp.username, amqp.password, str(amqp.url)) == (
        "team/a",
        "u",
        SECRET,
        "amqp://mq:5672",
    )
    assert SECRET not in repr(amqp)
    assert parse({"queueName": "q", "host": "amqp://mq"}).vhost == "/"
    http = parse(
        {"queueName": "q", "host": "https://mq/proxy/v1", "mode": "MessageRate", "value": "2"}
    )
    assert (http.protocol, http.vhost, str(http.url), http.mode) == (
        "http",
        "v1",
        "https://mq:15671/proxy",
        "MessageRate",
    )
    legacy = parse({"queueName": "q", "host": "http://mq:15672/", "queueLength": "7"})
    assert (legacy.mode, legacy.value, legacy.vhost) == ("QueueLength", 7.0, "/")


@pytest.mark.parametrize(
    ("metadata", "auth", "key"),
    [
        ({"queueName": "q"}, {}, "host"),
        ({"host": "amqp://mq"}, {}, "queueName"),
        ({"host": "ftp://mq", "queueName": "q"}, {}, "host"),
        ({"queueName": "q"}, {"host": f"ftp://u:{SECRET}@mq"}, "host"),
        ({"host": "http://mq", "queueName": "q", "mode": "QueueLength"}, {}, "value"),
        ({"host": "http://mq", "queueName": "q", "value": "3"}, {}, "mode"),
        (
            {"host": "http://mq", "queueName": "q", "queueLength": "3", "value": "3"},
            {},
            "queueLength",
        ),
        ({"host": "http://mq", "queueName": "q", "operation": "median"}, {}, "operation"),
        ({"host": "http://mq", "queueName": "q", "protocol": "stomp"}, {}, "protocol"),
        (
            {"host": "amqp://mq", "queueName": "q", "excludeUnacknowledged": "true"},
            {},
            "excludeUnacknowledged",
        ),
        ({"host": "amqp://mq", "queueName": "q", "timeout": "1s"}, {}, "timeout"),
        ({"host": "amqp://mq", "queueName": "q"}, {"tls": "enable"}, "tls"),
    ],
)
def test_rabbitmq_errors_name_the_key(
    metadata: dict[str, str], auth: dict[str, str], key: str
) -> None:
    assert reject("rabbitmq", metadata, auth).key == key
