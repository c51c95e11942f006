"""The exact JSON of value lists, discovery documents and OpenAPI, and metric name lookup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from adapter import (
    CustomMetricInfo,
    CustomSample,
    ExternalSample,
    GroupResource,
    MetricRef,
    ObjectReference,
    parse_selector,
)
from adapter.app import version_info
from adapter.custom import value_list as custom_value_list
from adapter.discovery import CUSTOM as CUSTOM_GROUP_VERSIONS
from adapter.discovery import api_group, api_group_list, custom_resources, external_resources
from adapter.external import MetricNames
from adapter.external import value_list as external_value_list
from adapter.openapi import openapi_v2, openapi_v3_group_version
from kits.clock import format_rfc3339

AT = datetime(2024, 5, 29, 8, 38, 20, 123456, tzinfo=UTC)


def test_timestamps_are_utc_seconds_with_z() -> None:
    assert format_rfc3339(AT) == "2024-05-29T08:38:20Z"
    plus_two = AT.astimezone(timezone(timedelta(hours=2)))
    assert format_rfc3339(plus_two) == "2024-05-29T08:38:20Z"
    assert format_rfc3339(datetime(2024, 1, 1)) == "2024-01-01T00:00:00Z"


def test_external_value_list() -> None:
    samples = [
        ExternalSample("queue", 92, AT, {"k": "v"}, window_seconds=30),
        ExternalSample("queue", 0.25, AT),
    ]
    assert external_value_list(samples) == {
        "kind": "ExternalMetricValueList",
        "apiVersion": "external.metrics.k8s.io/v1beta1",
        "metadata": {},
        "items": [
            {
                "metricName": "queue",
                "metricLabels": {"k": "v"},
                "timestamp": "2024-05-29T08:38:20Z",
                "window": 30,
                "value": "92",
            },
            {
                "metricName": "queue",
                "metricLabels": {},
                "timestamp": "2024-05-29T08:38:20Z",
                "value": "250m",
            },
        ],
    }


_POD = ObjectReference(kind="Pod", name="p1", namespace="default", api_version="/v1")


def test_custom_value_list_v1beta1() -> None:
    samples = [CustomSample(_POD, "m", 5.914, AT, window_seconds=60)]
    assert custom_value_list("v1beta1", samples, parse_selector(None)) == {
        "kind": "MetricValueList",
        "apiVersion": "custom.metrics.k8s.io/v1beta1",
        "metadata": {},
        "items": [
            {
                "describedObject": {
                    "kind": "Pod",
                    "namespace": "default",
                    "name": "p1",
                    "apiVersion": "/v1",
                },
                "metricName": "m",
                "timestamp": "2024-05-29T08:38:20Z",
                "window": 60,
                "value": "5914m",
                "selector": None,
            }
        ],
    }


def test_custom_value_list_v1beta2() -> None:
    node = ObjectReference(kind="Node", name="n1")
    samples = [CustomSample(node, "load", 2000, AT)]
    assert custom_value_list("v1beta2", samples, parse_selector("a=b,c")) == {
        "kind": "MetricValueList",
        "apiVersion": "custom.metrics.k8s.io/v1beta2",
        "metadata": {},
        "items": [
            {
                "describedObject": {"kind": "Node", "name": "n1"},
                "metric": {
                    "name": "load",
                    "selector": {
                        "matchLabels": {"a": "b"},
                        "matchExpressions": [{"key": "c", "operator": "Exists"}],
                    },
                },
                "timestamp": "2024-05-29T08:38:20Z",
                "value": "2k",
            }
        ],
    }


def test_external_discovery_dedupes_sorts_and_has_a_placeholder() -> None:
    listed = external_resources(
        [MetricRef("b"), MetricRef("a", "ns1"), MetricRef("a", "ns2"), MetricRef("x/y")]
    )
    assert [r["name"] for r in listed["resources"]] == ["a", "b"]
    assert all(r["namespaced"] and r["verbs"] == ["get"] for r in listed["resources"])
    assert [r["name"] for r in external_resources([])["resources"]] == ["externalmetrics"]


def test_custom_discovery_keeps_each_resource_in_one_scope() -> None:
    listed = custom_resources(
        "v1beta2",
        [
            CustomMetricInfo(GroupResource("pods"), "rps"),
            CustomMetricInfo(GroupResource("pods"), "lag", namespaced=False),
            CustomMetricInfo(GroupResource("deployments", "apps"), "q"),
            CustomMetricInfo(GroupResource("namespaces"), "budget", namespaced=False),
        ],
    )
    assert listed["groupVersion"] == "custom.metrics.k8s.io/v1beta2"
    assert [(r["name"], r["namespaced"], r["kind"]) for r in listed["resources"]] == [
        ("deployments.apps/q", True, "MetricValueList"),
        ("namespaces/budget", False, "MetricValueList"),
        ("pods/lag", True, "MetricValueList"),
        ("pods/rps", True, "MetricValueList"),
    ]
    assert [r["name"] for r in custom_resources("v1beta1", [])["resources"]] == ["custommetrics"]


def test_group_documents() -> None:
    group = api_group(CUSTOM_GROUP_VERSIONS)
    assert group == {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": "custom.metrics.k8s.io",
        "versions": [
            {"groupVersion": "custom.metrics.k8s.io/v1beta2", "version": "v1beta2"},
            {"groupVersion": "custom.metrics.k8s.io/v1beta1", "version": "v1beta1"},
        ],
        "preferredVersion": {"groupVersion": "custom.metrics.k8s.io/v1beta2", "version": "v1beta2"},
    }
    assert api_group_list()["kind"] == "APIGroupList"


def test_metric_names_resolve_case_insensitively_within_scope() -> None:
    names = MetricNames()
    names.rebuild(
        [
            MetricRef("queueLength", "team-a"),
            MetricRef("QueueLength", "team-a"),
            MetricRef("Lag"),
        ]
    )
    assert names.resolve("team-a", "queuelength") == "QueueLength"  # first sorted spelling
    assert names.resolve("team-a", "queueLength") == "queueLength"  # exact spelling wins
    assert names.resolve("team-b", "queuelength") is None
    assert names.resolve("anywhere", "lag") == "Lag"
    assert names.resolve("team-a", "missing") is None


def _refs(document: dict[str, object], root: str) -> set[str]:
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                found.add(ref.removeprefix(root))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    return found


def test_openapi_documents_are_self_consistent() -> None:
    v2 = openapi_v2("0.1.0")
    assert v2["swagger"] == "2.0"
    assert _refs(v2, "#/definitions/") <= set(v2["definitions"])
    operation_ids = [p["get"]["operationId"] for p in v2["paths"].values()]
    assert len(operation_ids) == len(set(operation_ids)) == 11
    v3 = openapi_v3_group_version("0.1.0", "custom.metrics.k8s.io", "v1beta2")
    assert _refs(v3, "#/components/schemas/") <= set(v3["components"]["schemas"])
    assert all(p.startswith("/apis/custom.metrics.k8s.io/v1beta2/") for p in v3["paths"])


def test_version_info() -> None:
    info = version_info("1.2.3")
    assert (info["major"], info["minor"], info["gitVersion"]) == ("1", "2", "v1.2.3")
