"""TriggerSpec identity and redaction; the registry; DNS-safe names."""

from __future__ import annotations

import pickle
import re

import pytest

from scalers import ConfigError, TriggerSpec, default_registry, dns_safe_name


def test_equal_specs_share_an_identity_whatever_the_key_order() -> None:
    one = TriggerSpec("prometheus", {"a": "1", "b": "2"}, {"bearerToken": "t"})
    two = TriggerSpec("prometheus", {"b": "2", "a": "1"}, {"bearerToken": "t"})
    assert one == two
    assert hash(one) == hash(two)
    assert one.identity == two.identity


@pytest.mark.parametrize(
    "other",
    [
        TriggerSpec("cron", {"a": "1"}, {"bearerToken": "t"}),
        TriggerSpec("prometheus", {"a": "2"}, {"bearerToken": "t"}),
        TriggerSpec("prometheus", {"a": "1"}, {"bearerToken": "u"}),
        TriggerSpec("prometheus", {"a": "1"}, {}),
    ],
)
def test_type_metadata_and_auth_all_count(other: TriggerSpec) -> None:
    assert TriggerSpec("prometheus", {"a": "1"}, {"bearerToken": "t"}) != other


def test_identity_carries_no_auth_value() -> None:
    spec = TriggerSpec("prometheus", {"a": "1"}, {"password": "hunter2"})
    assert "hunter2" not in repr(spec.identity)
    assert re.fullmatch(r"[0-9a-f]{32}", spec.identity[2])


def test_auth_digest_cannot_be_shifted_across_key_and_value() -> None:
    assert TriggerSpec("x", {}, {"ab": "c"}).identity != TriggerSpec("x", {}, {"a": "bc"}).identity


def test_repr_and_str_redact_auth_and_pickling_is_refused() -> None:
    spec = TriggerSpec("prometheus", {"query": "up"}, {"bearerToken": "s3cret"})
    for text in (repr(spec), str(spec), f"{spec}", f"{spec!r}"):
        assert "s3cret" not in text
        assert "'bearerToken': '<redacted>'" in text
        assert "'query': 'up'" in text
    with pytest.raises(TypeError):
        pickle.dumps(spec)


def test_spec_copies_its_maps() -> None:
    metadata = {"query": "up"}
    spec = TriggerSpec("prometheus", metadata)
    metadata["query"] = "down"
    assert spec.metadata["query"] == "up"
    with pytest.raises(TypeError):
        spec.metadata["query"] = "x"  # type: ignore[index]


def test_unknown_type_names_the_type_key() -> None:
    registry = default_registry()
    listed = (
        "aws-sqs-queue, cron, nats-jetstream, postgresql, prometheus, rabbitmq, redis, "
        "redis-streams"
    )
    assert registry.types() == tuple(listed.split(", "))
    with pytest.raises(ConfigError) as caught:
        registry.validate(TriggerSpec("kafka", {}))
    assert (caught.value.key, caught.value.value) == ("type", "kafka")
    assert caught.value.expected == f"a scaler type (one of: {listed})"


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("cron-Asia/Seoul-0xSl2xxx", "cron-asia-seoul-0xsl2xxx"),
        ("--Weird__Name!!", "weird-name"),
        ("", "metric"),
        ("a--b", "a--b"),
    ],
)
def test_dns_safe_name(raw: str, name: str) -> None:
    assert dns_safe_name(raw) == name


def test_dns_safe_name_cuts_long_names_with_a_digest() -> None:
    one = dns_safe_name("x" * 100 + "a")
    two = dns_safe_name("x" * 100 + "b")
    assert len(one) == len(two) == 58
    assert one != two
    assert one[:49] == "x" * 49
