"""`external.metrics.k8s.io/v1beta1`: discovery and `ExternalMetricValueList` responses.

Owns the external group's routes, resolving a requested metric name to the provider's spelling
(case-insensitively: client-go lowercases the path segment, so an HPA asking for `queueLength`
sends `queuelength`), and the exact JSON of the value list. It must not compute values (the
`ExternalMetrics` provider does) nor authenticate (the middleware did).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from adapter.discovery import EXTERNAL, api_group, external_resources
from adapter.encoding import json_response
from adapter.errors import MetricNotFoundError
from adapter.paths import parse_external, split_path
from adapter.providers import (
    EXTERNAL_GROUP,
    ExternalMetrics,
    ExternalSample,
    MetricRef,
    match_name,
)
from adapter.quantity import format_metric_value
from adapter.selectors import parse_selector
from kits import format_rfc3339

VERSION = "v1beta1"
PREFIX = f"/apis/{EXTERNAL_GROUP}/{VERSION}"


def value_list(samples: Sequence[ExternalSample]) -> dict[str, Any]:
    """The `ExternalMetricValueList` body for `samples`."""
    items = []
    for sample in samples:
        item: dict[str, Any] = {
            "metricName": sample.metric_name,
            "metricLabels": dict(sample.labels),
            "timestamp": format_rfc3339(sample.timestamp),
        }
        if sample.window_seconds is not None:
            item["window"] = sample.window_seconds
        item["value"] = format_metric_value(sample.value)
        items.append(item)
    return {
        "kind": "ExternalMetricValueList",
        "apiVersion": f"{EXTERNAL_GROUP}/{VERSION}",
        "metadata": {},
        "items": items,
    }


class MetricNames:
    """Lowercased name -> the provider's spellings, per namespace (None: every namespace)."""

    def __init__(self) -> None:
        self._index: dict[str, dict[str | None, set[str]]] = {}

    def rebuild(self, metrics: Sequence[MetricRef]) -> None:
        index: dict[str, dict[str | None, set[str]]] = {}
        for ref in metrics:
            index.setdefault(ref.name.lower(), {}).setdefault(ref.namespace, set()).add(ref.name)
        self._index = index

    def resolve(self, namespace: str, requested: str) -> str | None:
        """The provider's spelling of `requested` visible in `namespace`: the exact spelling if
        it exists, else the first (sorted) that differs only in case, else None."""
        scopes = self._index.get(requested.lower())
        if scopes is None:
            return None
        return match_name(requested, scopes.get(namespace, set()) | scopes.get(None, set()))


class ExternalHandlers:
    """The routes of the external group, over one provider."""

    def __init__(self, provider: ExternalMetrics) -> None:
        self._provider = provider
        self._names = MetricNames()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(f"/apis/{EXTERNAL_GROUP}", self.group)
        app.router.add_get(PREFIX, self.resources)
        app.router.add_get(PREFIX + "/{tail:.+}", self.metric)

    async def group(self, request: web.Request) -> web.Response:
        return json_response(api_group(EXTERNAL))

    async def resources(self, request: web.Request) -> web.Response:
        metrics = await self._provider.list_metrics()
        self._names.rebuild(metrics)
        return json_response(external_resources(metrics))

    async def _refresh(self) -> None:
        self._names.rebuild(await self._provider.list_metrics())

    async def metric(self, request: web.Request) -> web.Response:
        # Past `apis/<group>/<version>`; split before decoding so `%2F` stays in its segment.
        path = parse_external(split_path(request.rel_url.raw_path)[3:])
        selector = parse_selector(request.query.get("labelSelector"))
        refreshed = False
        name = self._names.resolve(path.namespace, path.metric)
        if name is None:
            await self._refresh()
            refreshed = True
            name = self._names.resolve(path.namespace, path.metric)
        if name is None:
            raise MetricNotFoundError(path.metric, group=EXTERNAL_GROUP)
        try:
            samples = await self._provider.get(
                namespace=path.namespace, name=name, selector=selector
            )
        except MetricNotFoundError:
            if refreshed:
                raise
            # The index may predate a rename that only changed case: look once more.
            await self._refresh()
            again = self._names.resolve(path.namespace, path.metric)
            if again is None or again == name:
                raise
            samples = await self._provider.get(
                namespace=path.namespace, name=again, selector=selector
            )
        return json_response(value_list(samples))
