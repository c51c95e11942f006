"""`custom.metrics.k8s.io` v1beta1 and v1beta2: discovery and `MetricValueList` responses.

Owns the custom group's routes (Object, Pods, root-scoped and namespace metrics), reading
`labelSelector` / `metricLabelSelector`, and the exact JSON of each version's value list. It
must not compute values (the `CustomMetrics` provider does) nor normalise resource names (that
needs a RESTMapper; the provider gets the lowercased segment as sent).

Every response is a list, a single-object request included, and always carries `kind` and
`apiVersion`: the HPA's client decodes by the body's group-version-kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from adapter.discovery import CUSTOM, api_group, custom_resources
from adapter.encoding import json_response
from adapter.paths import parse_custom, split_path
from adapter.providers import CUSTOM_GROUP, CustomMetrics, CustomSample, ObjectReference
from adapter.quantity import format_metric_value
from adapter.selectors import Selector, parse_selector
from kits import format_rfc3339

VERSIONS = CUSTOM.versions


def _described(ref: ObjectReference) -> dict[str, str]:
    # ObjectReference fields are all omitempty in Go.
    fields = {
        "kind": ref.kind,
        "namespace": ref.namespace,
        "name": ref.name,
        "apiVersion": ref.api_version,
    }
    return {k: v for k, v in fields.items() if v}


def _item_v1beta1(sample: CustomSample, selector: dict[str, Any] | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "describedObject": _described(sample.described_object),
        "metricName": sample.metric,
        "timestamp": format_rfc3339(sample.timestamp),
    }
    if sample.window_seconds is not None:
        item["window"] = sample.window_seconds
    item["value"] = format_metric_value(sample.value)
    item["selector"] = selector
    return item


def _item_v1beta2(sample: CustomSample, selector: dict[str, Any] | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "describedObject": _described(sample.described_object),
        "metric": {"name": sample.metric, "selector": selector},
        "timestamp": format_rfc3339(sample.timestamp),
    }
    if sample.window_seconds is not None:
        item["windowSeconds"] = sample.window_seconds
    item["value"] = format_metric_value(sample.value)
    return item


def value_list(
    version: str, samples: Sequence[CustomSample], metric_selector: Selector
) -> dict[str, Any]:
    """The `MetricValueList` body of `version` for `samples`; each item echoes the metric
    selector that produced it (null when there was none)."""
    selector = metric_selector.to_label_selector()
    item = _item_v1beta1 if version == "v1beta1" else _item_v1beta2
    return {
        "kind": "MetricValueList",
        "apiVersion": f"{CUSTOM_GROUP}/{version}",
        "metadata": {},
        "items": [item(s, selector) for s in samples],
    }


class CustomHandlers:
    """The routes of the custom group, both versions over one provider."""

    def __init__(self, provider: CustomMetrics) -> None:
        self._provider = provider

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(f"/apis/{CUSTOM_GROUP}", self.group)
        for version in VERSIONS:
            prefix = f"/apis/{CUSTOM_GROUP}/{version}"
            app.router.add_get(prefix, self.resources)
            app.router.add_get(prefix + "/{tail:.+}", self.metric)

    async def group(self, request: web.Request) -> web.Response:
        return json_response(api_group(CUSTOM))

    async def resources(self, request: web.Request) -> web.Response:
        version = split_path(request.rel_url.raw_path)[2]
        return json_response(custom_resources(version, await self._provider.list_metrics()))

    async def metric(self, request: web.Request) -> web.Response:
        segments = split_path(request.rel_url.raw_path)
        version = segments[2]
        path = parse_custom(segments[3:])
        metric_selector = parse_selector(request.query.get("metricLabelSelector"))
        if path.name is None:
            samples = await self._provider.get_by_selector(
                resource=path.resource,
                namespace=path.namespace,
                selector=parse_selector(request.query.get("labelSelector")),
                metric=path.metric,
                metric_selector=metric_selector,
            )
        else:
            sample = await self._provider.get_by_name(
                resource=path.resource,
                namespace=path.namespace,
                name=path.name,
                metric=path.metric,
                metric_selector=metric_selector,
            )
            samples = [sample]
        return json_response(value_list(version, samples, metric_selector))
