"""Request paths: segments, the metric path forms, and authorization attributes."""

from __future__ import annotations

import pytest

from adapter import (
    GroupResource,
    InvalidPathError,
    NonResourceAttributes,
    NotFoundError,
    ResourceAttributes,
)
from adapter.paths import (
    CustomPath,
    ExternalPath,
    parse_custom,
    parse_external,
    request_attributes,
    split_path,
)


def test_split_decodes_after_splitting() -> None:
    assert split_path("/apis/g/v/namespaces/ns/pods/%2A/m") == [
        "apis", "g", "v", "namespaces", "ns", "pods", "*", "m"
    ]  # fmt: skip
    assert split_path("/a/b%2Fc/") == ["a", "b/c"]
    assert split_path("/") == []


def test_external_paths() -> None:
    assert parse_external(["namespaces", "ns", "queue"]) == ExternalPath("ns", "queue")
    for bad in (["queue"], ["namespaces", "ns"], ["namespaces", "ns", "a", "b"],
                ["namespaces", "", "m"], ["namespaces", "ns", "a/b"], ["namespaces", "ns", ".."],
                ["namespaces", "ns", "50%"], ["nodes", "ns", "m"]):  # fmt: skip
        with pytest.raises(NotFoundError):
            parse_external(bad)


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        (
            ["namespaces", "shop", "pods", "*", "rps"],
            CustomPath(GroupResource("pods"), "shop", None, "rps"),
        ),
        (
            ["namespaces", "shop", "Deployments.apps", "web", "Queue"],
            CustomPath(GroupResource("deployments", "apps"), "shop", "web", "Queue"),
        ),
        (
            ["namespaces", "shop", "metrics", "budget"],
            CustomPath(GroupResource("namespaces"), "", "shop", "budget"),
        ),
        (["nodes", "n1", "load"], CustomPath(GroupResource("nodes"), "", "n1", "load")),
        (["nodes", "*", "load"], CustomPath(GroupResource("nodes"), "", None, "load")),
    ],
)
def test_custom_paths(segments: list[str], expected: CustomPath) -> None:
    assert parse_custom(segments) == expected


def test_custom_path_errors() -> None:
    with pytest.raises(InvalidPathError, match="invalid request path"):
        parse_custom(["namespaces", "shop", "pods"])
    for short in (["namespaces", "shop", "pods", "p"], ["nodes", "n1"], ["nodes"], [],
                  ["nodes", "", "m"], ["namespaces", "shop", "pods", "p", "m", "x"],
                  ["nodes", "n1", "a/b"]):  # fmt: skip
        with pytest.raises(NotFoundError):
            parse_custom(short)


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        (
            "GET",
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/queue",
            ResourceAttributes("list", "external.metrics.k8s.io", "v1beta1", "queue",
                               namespace="ns"),
        ),
        (
            "GET",
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/rps",
            ResourceAttributes("get", "custom.metrics.k8s.io", "v1beta2", "pods", "rps", "ns",
                               "*"),
        ),
        (
            "GET",
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ns/metrics/m",
            ResourceAttributes("get", "custom.metrics.k8s.io", "v1beta1", "metrics", "", "ns",
                               "m"),
        ),
        (
            "GET",
            "/apis/custom.metrics.k8s.io/v1beta1/nodes/n1/load",
            ResourceAttributes("get", "custom.metrics.k8s.io", "v1beta1", "nodes", "load", "",
                               "n1"),
        ),
        (
            "GET",
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ns",
            ResourceAttributes("get", "custom.metrics.k8s.io", "v1beta1", "namespaces", "", "ns",
                               "ns"),
        ),
        (
            "POST",
            "/apis/custom.metrics.k8s.io/v1beta1/nodes/n1/load",
            ResourceAttributes("create", "custom.metrics.k8s.io", "v1beta1", "nodes", "load", "",
                               "n1"),
        ),
        ("GET", "/apis/external.metrics.k8s.io/v1beta1",
         NonResourceAttributes("get", "/apis/external.metrics.k8s.io/v1beta1")),
        ("GET", "/apis", NonResourceAttributes("get", "/apis")),
        ("GET", "/openapi/v2", NonResourceAttributes("get", "/openapi/v2")),
    ],
)  # fmt: skip
def test_request_attributes(
    method: str, path: str, expected: ResourceAttributes | NonResourceAttributes
) -> None:
    assert request_attributes(method, path) == expected
