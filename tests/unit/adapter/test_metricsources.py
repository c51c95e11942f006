"""MetricSource parsing (every rejection names the field), standalone files, and serving
through the shared cache."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from adapter.errors import MetricNotFoundError, UnavailableError
from adapter.metricsources import (
    MAX_FAILURE_THRESHOLD,
    MAX_POLLING_INTERVAL,
    InvalidMetricSourceError,
    MetricSourceProvider,
    UnservableSourceError,
    parse,
    validate,
)
from adapter.selectors import parse_selector
from adapter.standalone import StandaloneConfigError, load
from scalers import FakeClock, MetricCache, default_registry

REPO = Path(__file__).resolve().parents[3]
REGISTRY = default_registry()


def cron_source(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "updraft.io/v1alpha1",
        "kind": "MetricSource",
        "metadata": {"name": "quarter-hours", "namespace": "shop"},
        "spec": {
            "trigger": {
                "type": "cron",
                "metadata": {
                    "timezone": "Asia/Seoul",
                    "start": "00,15,30,45 * * * *",
                    "end": "05,20,35,50 * * * *",
                    "desiredReplicas": "2",
                },
            },
            **spec,
        },
    }


def test_a_valid_source_becomes_spec_and_policy() -> None:
    source = parse(
        cron_source(pollingInterval=15, fallback={"failureThreshold": 2, "value": 1}),
        registry=REGISTRY,
    )
    assert source.key == ("shop", "quarter-hours")
    assert source.policy.polling_interval == 15.0
    assert source.policy.fallback is not None
    assert source.policy.fallback.failure_threshold == 2
    assert source.policy.fallback.value == 1.0
    assert source.spec().type == "cron"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda o: o["spec"]["trigger"].update(type="kafka"), "spec.trigger.type"),
        (lambda o: o["spec"]["trigger"]["metadata"].pop("start"), "spec.trigger.metadata.start"),
        (
            lambda o: o["spec"]["trigger"]["metadata"].update(desiredReplicas="0"),
            "spec.trigger.metadata.desiredReplicas",
        ),
        (
            lambda o: o["spec"]["trigger"]["metadata"].update(color="red"),
            "spec.trigger.metadata.color",
        ),
        (lambda o: o["spec"].update(pollingInterval=0), "spec.pollingInterval"),
        (lambda o: o["spec"].update(fallback={"value": 1}), "spec.fallback.failureThreshold"),
        (lambda o: o["spec"].update(replicas=3), "spec.replicas"),
        (lambda o: o["spec"]["trigger"].update(auth={"password": "hunter2"}), "spec.trigger.auth"),
        (lambda o: o["metadata"].update(name="Not_DNS"), "metadata.name"),
        (lambda o: o.update(kind="ScaledObject"), "apiVersion"),
    ],
)
def test_every_rejection_names_the_field(change: Any, field: str) -> None:
    obj = cron_source()
    change(obj)
    with pytest.raises(InvalidMetricSourceError) as err:
        parse(obj, registry=REGISTRY)
    assert err.value.field == field
    assert "hunter2" not in str(err.value)


def test_label_matchers_are_substituted_from_the_selector() -> None:
    obj = cron_source()
    obj["spec"]["trigger"] = {
        "type": "prometheus",
        "metadata": {
            "serverAddress": "http://127.0.0.1:9",
            "query": "sum(rate(http_requests_total{<<.LabelMatchers>>}[1m]))",
            "threshold": "10",
        },
    }
    source = parse(obj, registry=REGISTRY)
    selected = source.spec(parse_selector("app=web,tier in (a,b)")).metadata["query"]
    assert selected == 'sum(rate(http_requests_total{app="web",tier=~"a|b"}[1m]))'
    assert source.spec().metadata["query"] == "sum(rate(http_requests_total{}[1m]))"


async def test_provider_serves_from_the_cache_and_scopes_by_namespace() -> None:
    clock = FakeClock(datetime(2026, 3, 1, 15, 2, tzinfo=UTC))  # 00:02 Seoul, in the window
    cache = MetricCache(registry=REGISTRY, clock=clock, metrics_registry=CollectorRegistry())
    provider = MetricSourceProvider(cache)
    try:
        provider.upsert(parse(cron_source(), registry=REGISTRY))
        refs = await provider.list_metrics()
        assert [(r.namespace, r.name) for r in refs] == [("shop", "quarter-hours")]
        [sample] = await provider.get(
            namespace="shop", name="quarter-hours", selector=parse_selector("")
        )
        assert sample.value == 2.0
        assert sample.metric_name == "quarter-hours"
        # An HPA in another namespace cannot read it.
        with pytest.raises(MetricNotFoundError):
            await provider.get(namespace="other", name="quarter-hours", selector=parse_selector(""))
        provider.remove("shop", "quarter-hours")
        assert await provider.list_metrics() == ()
    finally:
        await cache.close()


async def test_upstream_down_is_unavailable() -> None:
    obj = cron_source()
    obj["spec"]["trigger"] = {
        "type": "prometheus",
        "metadata": {"serverAddress": "http://127.0.0.1:9", "query": "up", "threshold": "1"},
    }
    cache = MetricCache(registry=REGISTRY, metrics_registry=CollectorRegistry())
    provider = MetricSourceProvider(cache)
    provider.upsert(parse(obj, registry=REGISTRY))
    try:
        with pytest.raises(UnavailableError) as err:
            await provider.get(namespace="shop", name="quarter-hours", selector=parse_selector(""))
        assert "shop/quarter-hours" in str(err.value)
    finally:
        await cache.close()


def test_the_demo_file_loads() -> None:
    sources = load(REPO / "examples" / "standalone.yaml", registry=REGISTRY)
    assert [s.name for s in sources] == ["quarter-hours", "business-hours", "http-requests"]


def test_a_bad_standalone_file_names_document_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "apiVersion: updraft.io/v1alpha1\nkind: MetricSource\nmetadata: {name: ok}\n"
        "spec: {trigger: {type: cron, metadata: {timezone: UTC, start: '0 * * * *', "
        "end: '5 * * * *', desiredReplicas: '1'}}}\n---\n"
        "apiVersion: updraft.io/v1alpha1\nkind: MetricSource\nmetadata: {name: broken}\n"
        "spec: {trigger: {type: cron, metadata: {timezone: Mars/Olympus, start: '0 * * * *', "
        "end: '5 * * * *', desiredReplicas: '1'}}}\n"
    )
    with pytest.raises(StandaloneConfigError) as err:
        load(path, registry=REGISTRY)
    assert "document 2 (broken)" in str(err.value)
    assert "spec.trigger.metadata.timezone" in str(err.value)


def prometheus_with_auth_ref() -> dict[str, Any]:
    """The MetricSource of manifests/examples/prometheus-hpa.yaml: a bearer token by authRef."""
    obj = cron_source()
    obj["metadata"] = {"name": "http-requests", "namespace": "default"}
    obj["spec"]["trigger"] = {
        "type": "prometheus",
        "metadata": {
            "serverAddress": "http://prometheus.monitoring:9090",
            "query": "sum(rate(http_requests_total[1m]))",
            "threshold": "100",
            "authModes": "bearer",
        },
        "authRef": {"name": "prometheus-reader"},
    }
    return obj


def test_an_auth_ref_trigger_is_validated_with_the_secret_values() -> None:
    # Its auth keys are in the Secret: parsing alone cannot know them and must not refuse.
    source = parse(prometheus_with_auth_ref(), registry=REGISTRY)
    validate(source.with_auth({"bearerToken": "t0ken"}), registry=REGISTRY)
    with pytest.raises(InvalidMetricSourceError) as err:
        validate(source.with_auth({"token": "t0ken"}), registry=REGISTRY)
    assert err.value.field == "spec.trigger.authRef"
    assert str(err.value).startswith(
        'spec.trigger.authRef: Secret default/prometheus-reader has no key "bearerToken" ('
    )
    # A bad metadata key is still named as such.
    obj = prometheus_with_auth_ref()
    obj["spec"]["trigger"]["metadata"]["threshold"] = "many"
    with pytest.raises(InvalidMetricSourceError) as err:
        validate(parse(obj, registry=REGISTRY).with_auth({"bearerToken": "x"}), registry=REGISTRY)
    assert err.value.field == "spec.trigger.metadata.threshold"


def test_inline_auth_errors_name_the_inline_key() -> None:
    obj = prometheus_with_auth_ref()
    del obj["spec"]["trigger"]["authRef"]
    obj["spec"]["trigger"]["auth"] = {"username": "reader"}
    with pytest.raises(InvalidMetricSourceError) as err:
        parse(obj, registry=REGISTRY, inline_auth=True)
    assert err.value.field == "spec.trigger.auth.bearerToken"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"pollingInterval": 99999999999999999999}, "spec.pollingInterval"),
        ({"pollingInterval": 86401}, "spec.pollingInterval"),
        ({"fallback": {"failureThreshold": 10**12}}, "spec.fallback.failureThreshold"),
        ({"fallback": {"failureThreshold": 3, "value": float("inf")}}, "spec.fallback.value"),
    ],
)
def test_absurd_intervals_and_thresholds_are_refused(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidMetricSourceError) as err:
        parse(cron_source(**spec), registry=REGISTRY)
    assert err.value.field == field


def test_the_crd_has_the_same_bounds() -> None:
    crd = yaml.safe_load((REPO / "manifests/crds/metricsources.updraft.io.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["pollingInterval"]["maximum"] == MAX_POLLING_INTERVAL
    fallback = spec["properties"]["fallback"]["properties"]
    assert fallback["failureThreshold"]["maximum"] == MAX_FAILURE_THRESHOLD
    parse(cron_source(pollingInterval=MAX_POLLING_INTERVAL), registry=REGISTRY)


def test_an_empty_standalone_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n---\n")
    with pytest.raises(StandaloneConfigError) as err:
        load(path, registry=REGISTRY)
    assert str(err.value) == f"{path}: holds no MetricSource documents; expected at least one"


async def test_an_invalid_source_is_served_as_its_reason_and_names_match_in_any_case() -> None:
    cache = MetricCache(registry=REGISTRY, metrics_registry=CollectorRegistry())
    provider = MetricSourceProvider(cache)
    try:
        provider.upsert(parse(cron_source(), registry=REGISTRY))
        provider.mark_invalid("shop", "broken", "spec.trigger.metadata.start: missing")
        assert {r.name for r in await provider.list_metrics()} == {"quarter-hours", "broken"}
        with pytest.raises(UnavailableError) as err:
            await provider.get(namespace="shop", name="broken", selector=parse_selector(""))
        assert "MetricSource shop/broken is invalid: spec.trigger.metadata.start" in str(err.value)
        with pytest.raises(UnservableSourceError, match="shop/broken is invalid"):
            provider.trigger_for("shop", "BROKEN")
        found = provider.trigger_for("shop", "Quarter-Hours")
        assert found is not None
        assert found[0] == "quarter-hours"
        assert provider.trigger_for("other", "quarter-hours") is None
        # Fixed: served again.
        provider.upsert(parse(cron_source(), registry=REGISTRY))
        provider.remove("shop", "broken")
        assert [r.name for r in await provider.list_metrics()] == ["quarter-hours"]
    finally:
        await cache.close()
