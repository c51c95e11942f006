"""Custom-metrics rules: parsing the file (every error names the rule index and field), metric
naming, resources from labels, `metricsQuery` rendering and the PromQL label matchers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapter import GroupResource, parse_selector
from adapter.prometheus_rules import (
    CustomMetricsConfigError,
    QueryTemplate,
    go_expand,
    label_matchers,
    load_config,
    parse_config,
)
from adapter.resources import resolve

REPO = Path(__file__).resolve().parents[3]
PODS = GroupResource("pods")
NAMESPACES = GroupResource("namespaces")
INGRESSES = GroupResource("ingresses", "networking.k8s.io")


def rule(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "seriesQuery": 'packets_total{namespace!="",pod!=""}',
        "resources": {
            "overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
        },
        "metricsQuery": "sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)",
    }
    base.update(fields)
    return base


def config(*rules: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"prometheus": {"url": "http://prometheus:9090"}, "rules": list(rules), **top}


def rejected(document: Any) -> str:
    with pytest.raises(CustomMetricsConfigError) as caught:
        parse_config(document)
    return str(caught.value)


# --- parsing ---------------------------------------------------------------------------------


def test_defaults() -> None:
    parsed = parse_config(config(rule()))
    assert (parsed.prometheus_url, parsed.timeout) == ("http://prometheus:9090", 3.0)
    assert (parsed.relist_interval, parsed.metrics_max_age) == (60.0, 60.0)
    [only] = parsed.rules
    assert only.index == 0
    assert only.namespaced is True
    assert only.naming.matches.pattern == ".*"
    assert only.naming.as_ == "$0"
    assert only.filters == ()


def test_durations_and_trailing_slash() -> None:
    parsed = parse_config(
        config(
            rule(),
            prometheus={"url": "https://prom.example:9090/", "timeout": "1500ms"},
            relistInterval="30s",
            metricsMaxAge="1m30s",
        )
    )
    assert parsed.prometheus_url == "https://prom.example:9090"
    assert (parsed.timeout, parsed.relist_interval, parsed.metrics_max_age) == (1.5, 30.0, 90.0)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            config(rule(), rule(seriesQuery="")),
            "rules[1].seriesQuery: String should have at least 1",
        ),
        (
            config({k: v for k, v in rule().items() if k != "metricsQuery"}),
            "rules[0].metricsQuery: Field required",
        ),
        (
            config(rule(resources={"overide": {}})),
            "rules[0].resources.overide: Extra inputs are not permitted",
        ),
        (
            config(rule(), rule(name={"matches": "(", "as": "x"})),
            "rules[1].name.matches: not a regular expression",
        ),
        (
            config(rule(name={"matches": "^(a)_(b)$"})),
            "rules[0].name.as: required when name.matches has 2",
        ),
        (
            config(rule(seriesFilters=[{"is": "a", "isNot": "b"}])),
            "rules[0].seriesFilters[0]: give exactly one of is and isNot",
        ),
        (
            config(rule(seriesFilters=[{}, {"isNot": "["}])),
            "rules[0].seriesFilters[0]: give exactly one",
        ),
        (
            config(rule(seriesFilters=[{"isNot": "["}])),
            "rules[0].seriesFilters[0].isNot: not a regular expression",
        ),
        (
            config(rule(metricsQuery="sum(<<.Series>>{<<.Labels>>})")),
            "rules[0].metricsQuery: unknown field <<.Labels>>",
        ),
        (config(rule(metricsQuery="sum(<<Series>>)")), "rules[0].metricsQuery: a '<<' or '>>'"),
        (
            config(rule(resources={"template": "kube_<<.Kind>>"})),
            "rules[0].resources.template: expected a template",
        ),
        (config(rule(resources={})), "rules[0].resources: give overrides or a template"),
        (
            config(rule(resources={"overrides": {"pod": {"group": "x"}}})),
            "rules[0].resources.overrides.pod.resource: Field required",
        ),
        (
            config(rule(), prometheus={"url": "prometheus:9090"}),
            "prometheus.url: expected an http(s) URL",
        ),
        (
            config(rule(), prometheus={"url": "http://p:9090", "timeout": 3}),
            "prometheus.timeout: expected a duration",
        ),
        (config(rule(), relistInterval="1 minute"), "relistInterval: expected a duration"),
        (
            config(rule(), relistInterval="1m", metricsMaxAge="30s"),
            "metricsMaxAge: 30s is shorter than relistInterval",
        ),
        (config(), "rules: List should have at least 1 item"),
        ({"rules": [rule()]}, "prometheus: Field required"),
        (config(rule(), externalRules=[]), "externalRules: Extra inputs are not permitted"),
        (["rules"], "expected a mapping with prometheus and rules, got list"),
    ],
)
def test_errors_name_the_rule_and_field(document: Any, message: str) -> None:
    assert message in rejected(document)


def test_a_file_that_does_not_load_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(CustomMetricsConfigError, match=f"{missing}: cannot read"):
        load_config(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [\n")
    with pytest.raises(CustomMetricsConfigError, match=f"{broken}: not valid YAML"):
        load_config(broken)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config(rule(), rule(name={"matches": "("}))))
    with pytest.raises(CustomMetricsConfigError, match=re.escape(f"{bad}: rules[1].name.matches")):
        load_config(bad)


def test_the_example_file_loads() -> None:
    parsed = load_config(REPO / "examples" / "custom-metrics-rules.yaml")
    packets, requests = parsed.rules
    assert packets.naming.metric_for("packets_total") == "packets-per-second"
    assert dict(packets.resources.by_label) == {"namespace": NAMESPACES, "pod": PODS}
    assert requests.naming.metric_for("nginx_ingress_controller_requests") == "requests-per-second"
    assert requests.resources.resource_for("ingress") == INGRESSES


# --- naming ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "series", "metric"),
    [
        (
            {"matches": "^(.*)_total$", "as": "${1}-per-second"},
            "packets_total",
            "packets-per-second",
        ),
        ({"matches": "^(.*)_total$", "as": "$1-per-second"}, "packets_total", "packets-per-second"),
        ({"matches": "^(.*)_total$"}, "packets_total", "packets"),  # one group: $1
        ({"matches": "_total$"}, "packets_total", "_total"),  # no group: $0, the match only
        ({}, "packets_total", "packets_total"),  # .* by default
        (
            {"matches": "^(?P<what>.*)_seconds_total$", "as": "${what}_per_second"},
            "cpu_seconds_total",
            "cpu_per_second",
        ),
        ({"matches": "^(.*)_total$", "as": "rate_of_$1"}, "packets_total", "rate_of_packets"),
        ({"matches": "^(.*)_total$"}, "packets_count", None),  # no match: not served
        ({"matches": "^(.*)_total$", "as": "$2"}, "packets_total", None),  # empty name: not served
    ],
)
def test_metric_names(name: dict[str, str], series: str, metric: str | None) -> None:
    [parsed] = parse_config(config(rule(name=name))).rules
    assert parsed.naming.metric_for(series) == metric


def test_go_expand() -> None:
    match = re.search(r"(?P<a>x+)(y+)", "__xxyy__")
    assert match is not None
    assert go_expand("$0|$1|$2|${a}|$a|$$|$3|${9}", match) == "xxyy|xx|yy|xx|xx|$||"
    # `$1_y` is the group named `1_y` (empty), as in Go; `${1}_y` is group 1 then `_y`.
    assert go_expand("$1_y ${1}_y", match) == " xx_y"
    # A `$` with nothing valid after it stays as it is.
    assert go_expand("cost$ $-1 ${a-b}", match) == "cost$ $-1 ${a-b}"


def test_series_filters() -> None:
    [parsed] = parse_config(
        config(rule(seriesFilters=[{"is": "^packets_"}, {"isNot": "_bucket$"}]))
    ).rules
    assert [parsed.keeps(s) for s in ("packets_total", "packets_bucket", "bytes_total")] == [
        True,
        False,
        False,
    ]


# --- resources -------------------------------------------------------------------------------


def test_overrides_normalise_the_resource() -> None:
    overrides = {
        "kubernetes_namespace": {"resource": "Namespace"},
        "kubernetes_pod_name": {"resource": "pods"},
        "ingress": {"group": "networking.k8s.io", "resource": "ingress"},
        "deploy": {"resource": "deployment"},  # group found by the mapper, as a RESTMapper would
        "widget": {"group": "example.com", "resource": "widgets"},  # unknown: kept as given
    }
    [parsed] = parse_config(config(rule(resources={"overrides": overrides}))).rules
    labels = parsed.resources
    assert dict(labels.by_label) == {
        "kubernetes_namespace": NAMESPACES,
        "kubernetes_pod_name": PODS,
        "ingress": INGRESSES,
        "deploy": GroupResource("deployments", "apps"),
        "widget": GroupResource("widgets", "example.com"),
    }
    assert labels.label_for(PODS) == "kubernetes_pod_name"
    assert labels.label_for(GroupResource("nodes")) is None
    assert labels.resources_of(["__name__", "kubernetes_pod_name", "instance", "ingress"]) == {
        PODS: "kubernetes_pod_name",
        INGRESSES: "ingress",
    }


def test_resource_template() -> None:
    [plain] = parse_config(config(rule(resources={"template": "<<.Resource>>"}))).rules
    found = plain.resources.resources_of(["namespace", "pod", "instance", "job", "ingress"])
    # `job` names Jobs too: that is what a bare <<.Resource>> template means.
    assert found == {
        NAMESPACES: "namespace",
        PODS: "pod",
        GroupResource("jobs", "batch"): "job",
        INGRESSES: "ingress",
    }
    [grouped] = parse_config(
        config(
            rule(
                resources={
                    "template": "kube_<<.Group>>_<<.Resource>>",
                    "overrides": {"namespace": {"resource": "namespace"}},
                }
            )
        )
    ).rules
    labels = grouped.resources
    assert labels.resource_for("kube_apps_deployment") == GroupResource("deployments", "apps")
    assert labels.resource_for("kube_networking_k8s_io_ingress") == INGRESSES
    assert labels.resource_for("kube__pod") == PODS
    assert labels.resource_for("namespace") == NAMESPACES  # the override beside the template
    assert labels.label_for(INGRESSES) == "kube_networking_k8s_io_ingress"


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        (GroupResource("ingresses", "networking.k8s.io"), INGRESSES),
        (GroupResource("ingresses"), INGRESSES),
        (GroupResource("ingress"), INGRESSES),
        (GroupResource("Ingress"), INGRESSES),
        (GroupResource("pod"), PODS),
        (GroupResource("deployments", "apps"), GroupResource("deployments", "apps")),
    ],
)
def test_resource_spellings(spelling: GroupResource, canonical: GroupResource) -> None:
    kind = resolve(spelling)
    assert kind is not None
    assert kind.group_resource == canonical


def test_unknown_resources_and_wrong_groups_do_not_resolve() -> None:
    assert resolve(GroupResource("widgets")) is None
    assert resolve(GroupResource("ingresses", "extensions")) is None
    kind = resolve(PODS)
    assert kind is not None
    assert (kind.kind, kind.api_version) == ("Pod", "/v1")


# --- queries ---------------------------------------------------------------------------------


def test_query_rendering() -> None:
    template = QueryTemplate.parse(
        "sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<< .GroupBy >>)"
    )
    rendered = template.render(
        series="packets_total", label_matchers='namespace="shop",pod="a"', group_by="pod"
    )
    assert rendered == 'sum(rate(packets_total{namespace="shop",pod="a"}[1m])) by (pod)'


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"namespace": ("namespace", "shop"), "names": ["web-1"]},
            'namespace="shop",pod="web-1"',
        ),
        (
            {"namespace": ("namespace", "shop"), "names": ["web-2", "web-1", "web-2"]},
            'namespace="shop",pod=~"web-1|web-2"',
        ),
        ({"namespace": None, "names": ["a.b"]}, 'pod="a.b"'),
        ({"namespace": None, "names": ["a.b", "c"]}, 'pod=~"a\\\\.b|c"'),
        (
            {
                "namespace": ("namespace", "shop"),
                "names": None,
                "selector": "app=web,tier in (a,b)",
            },
            'namespace="shop",app="web",tier=~"a|b"',
        ),
        (
            {
                "namespace": ("kubernetes_namespace", "shop"),
                "names": ["a"],
                "metric_selector": "verb!=GET",
            },
            'kubernetes_namespace="shop",pod="a",verb!="GET"',
        ),
        ({"namespace": None, "names": None}, ""),
    ],
)
def test_label_matchers(kwargs: dict[str, Any], expected: str) -> None:
    rendered = label_matchers(
        namespace=kwargs["namespace"],
        resource_label="pod",
        names=kwargs["names"],
        selector=parse_selector(kwargs.get("selector")),
        metric_selector=parse_selector(kwargs.get("metric_selector")),
    )
    assert rendered == expected
