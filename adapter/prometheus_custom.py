"""`PrometheusCustomMetrics`: the `CustomMetrics` provider over Prometheus and the config's rules.

Owns discovery (every rule's `seriesQuery` through `GET /api/v1/series`, re-run each
`relistInterval`, into an in-memory index of which resource/metric pairs exist), the values
(one instant query per request, built from the rule's `metricsQuery`), listing the objects a
Pods-style request selects through the Kubernetes API, and mapping Prometheus failures to the
adapter's errors. The meaning of a rule is `prometheus_rules.py`'s; HTTP is `custom.py`'s.

Objects and selectors, as prometheus-adapter does it: a request for `pods/*` with a
`labelSelector` lists the matching pods through the Kubernetes API and asks Prometheus for
`pod=~"a|b|c"` (series rarely carry the pods' own labels). Without a cluster (standalone mode),
or for a resource outside `adapter.resources`' table, the selector is turned into PromQL
matchers on the series instead. A series whose object is not
in the list is left out; an object with no series is simply absent.

Values are not kept in `scalers`' `MetricCache`: it holds one number per trigger, while an answer
here is a vector (a value per object) for a query that depends on the objects listed a moment
before. Instead the rendered query is the key of a small single-flight map whose entries live
`value_ttl` seconds (2 s): the HPA asks once per sync period (15 s) per metric, so nothing is
served older than a fraction of it, while HPAs asking the same thing in one sync (and v1beta1 and
v1beta2 clients) share one upstream call. Errors are never kept.

Prometheus is asked through `scalers`' `PrometheusClient` (the Prometheus scaler's client: one
decoder of answers and errors, auth headers and TLS through a pooled session); its errors are
rephrased here with the server's URL.

Errors: Prometheus unreachable or slow, a failed query (its message included), a Kubernetes list
that fails: `UnavailableError` (503). An unknown metric, or an object without a value:
`MetricNotFoundError` (404). NaN is served as 0, as prometheus-adapter does; an infinity is left
out (no Quantity carries it). A failed relist keeps the previous index.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp

import scalers
from adapter.errors import MetricNotFoundError, UnavailableError
from adapter.prometheus_rules import NAMESPACES, CustomMetricsConfig, Rule, label_matchers
from adapter.providers import (
    CUSTOM_GROUP,
    CustomMetricInfo,
    CustomSample,
    GroupResource,
    ObjectReference,
)
from adapter.resources import ResourceKind, resolve
from adapter.selectors import EVERYTHING, Selector
from kube import Api, KubeError, Resource
from scalers import PrometheusAuth, PrometheusClient, SessionPool

__all__ = ["PrometheusCustomMetrics"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")


@dataclass(frozen=True)
class _Entry:
    """One discovered (resource, metric): how to query it."""

    rule: Rule
    series: str
    resource_label: str
    namespace_label: str | None
    """The label holding the namespace; None when the metric is root-scoped."""

    @property
    def namespaced(self) -> bool:
        return self.namespace_label is not None


@dataclass(frozen=True)
class _Point:
    labels: dict[str, str]
    at: datetime
    value: float


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def unavailable(
    error: scalers.UpstreamError, *, what: str, where: str, hint: str = ""
) -> UnavailableError:
    """The adapter's 503 for a failed Prometheus call, phrased with the server it asked;
    ``hint`` follows a result of the wrong type."""
    if isinstance(error, scalers.UnavailableError):
        return UnavailableError(f"{what}: {where} is unreachable ({error.reason})")
    if isinstance(error, scalers.AuthError):
        return UnavailableError(f"{what}: {where} refused our credentials: {error.reason}")
    if isinstance(error, scalers.BadResponseError) and error.status is not None:
        return UnavailableError(f"{what}: {where} answered {error.reason}")
    if isinstance(error, scalers.BadResultError) and hint:
        return UnavailableError(f"{what}: {error.reason} ({hint})")
    return UnavailableError(f"{what}: {where} answered: {error.reason}")


class PrometheusCustomMetrics:
    """`CustomMetrics` from Prometheus series, as the config's rules describe them.

    `api` is the cluster to list objects in (None in standalone mode). Call `start()` once on
    the running loop (first discovery, then the relist loop) and `close()` at the end;
    `refresh()` runs one discovery now and raises `UnavailableError` when it fails.
    """

    def __init__(
        self,
        config: CustomMetricsConfig,
        *,
        api: Api | None = None,
        value_ttl: float = 2.0,
        auth: PrometheusAuth | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self._config = config
        self._api = api
        self._value_ttl = value_ttl
        # One pooled session for the one Prometheus every rule talks to.
        self._sessions = SessionPool(connections_per_session=32)
        self._client = PrometheusClient(
            config.prometheus_url,
            sessions=self._sessions,
            auth=auth,
            headers=headers,
            timeout=config.timeout,
        )
        self._where = f"Prometheus at {config.prometheus_url}"
        self._index: dict[tuple[GroupResource, str], _Entry] = {}
        self._infos: tuple[CustomMetricInfo, ...] = ()
        self._values: dict[str, tuple[float, asyncio.Task[list[_Point]]]] = {}
        self._relister: asyncio.Task[None] | None = None
        self._closed = False
        self._discovered = False
        self._undiscovered: UnavailableError | None = None
        """Why no discovery has succeeded yet: until one does, an unknown metric is not known
        to be missing, so it is answered 503 with this reason rather than 404."""

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Discover once (a failure is logged; the index stays empty until a relist works),
        then relist every `relistInterval` until `close()`."""
        try:
            await self.refresh()
        except UnavailableError as e:
            interval = self._config.relist_interval
            log.warning("custom metrics discovery failed, retrying in %gs: %s", interval, e.message)
        self._relister = asyncio.create_task(self._relist(), name="custom-metrics-relist")

    async def _relist(self) -> None:
        while True:
            await asyncio.sleep(self._config.relist_interval)
            try:
                await self.refresh()
            except UnavailableError as e:
                log.warning("custom metrics relist failed, keeping the last index: %s", e.message)
            except Exception:
                log.exception("custom metrics relist failed, keeping the last index")

    async def close(self) -> None:
        self._closed = True
        tasks: list[asyncio.Task[Any]] = [t for _, t in self._values.values()]
        if self._relister is not None:
            tasks.append(self._relister)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._values.clear()
        await self._client.close()
        await self._sessions.close()

    # --- Prometheus ---------------------------------------------------------------------------

    async def _call(self, call: Callable[[], Awaitable[_T]], *, what: str, hint: str = "") -> _T:
        """``call``'s result; every Prometheus failure as the adapter's ``UnavailableError``."""
        if self._closed:
            raise UnavailableError("the custom metrics source is shutting down")
        try:
            return await call()
        except scalers.UpstreamError as e:
            raise unavailable(e, what=what, where=self._where, hint=hint) from None

    # --- discovery ----------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Run every rule's `seriesQuery` and replace the index; on any failure the index is
        left as it was and `UnavailableError` says which rule failed and why."""
        start = time.time() - self._config.metrics_max_age
        index: dict[tuple[GroupResource, str], _Entry] = {}
        for rule in self._config.rules:
            what = f"custom metrics rules[{rule.index}] seriesQuery {_shorten(rule.series_query)!r}"
            try:
                found = await self._call(
                    functools.partial(
                        self._client.series, rule.series_query, start=start, what=what
                    ),
                    what=what,
                )
            except UnavailableError as e:
                if not self._discovered:
                    self._undiscovered = e
                raise
            for labels in found:
                self._add_series(index, rule, labels)
        self._undiscovered = None
        self._discovered = True
        infos = tuple(
            sorted(
                (
                    CustomMetricInfo(resource=gr, metric=metric, namespaced=entry.namespaced)
                    for (gr, metric), entry in index.items()
                ),
                key=lambda i: (str(i.resource), i.metric),
            )
        )
        if infos != self._infos:
            log.info("custom metrics discovery: %d resource/metric pairs", len(infos))
        self._index, self._infos = index, infos

    @staticmethod
    def _add_series(
        index: dict[tuple[GroupResource, str], _Entry], rule: Rule, labels: Mapping[str, Any]
    ) -> None:
        series = labels.get("__name__")
        if not isinstance(series, str) or not rule.keeps(series):
            return
        metric = rule.naming.metric_for(series)
        if metric is None:
            return
        resources = rule.resources.resources_of(k for k in labels if k != "__name__")
        namespace_label = resources.get(NAMESPACES) if rule.namespaced else None
        for resource, label in resources.items():
            kind = resolve(resource)
            scoped = resource != NAMESPACES and (kind is None or kind.namespaced)
            entry = _Entry(
                rule=rule,
                series=series,
                resource_label=label,
                namespace_label=namespace_label if scoped else None,
            )
            # The first rule (and series) to name a pair serves it.
            index.setdefault((resource, metric), entry)

    async def list_metrics(self) -> Sequence[CustomMetricInfo]:
        return self._infos

    # --- values -------------------------------------------------------------------------------

    def _lookup(
        self, resource: GroupResource, namespace: str, metric: str, *, described: str
    ) -> tuple[_Entry, ResourceKind | None]:
        kind = resolve(resource)
        canonical = kind.group_resource if kind is not None else resource
        entry = self._index.get((canonical, metric))
        if entry is None and self._undiscovered is not None:
            raise UnavailableError(
                f"custom metrics are not discovered yet: {self._undiscovered.message}"
            )
        # A namespaced metric is asked for in a namespace; a root-scoped one is not.
        if entry is None or entry.namespaced != bool(namespace):
            raise MetricNotFoundError(
                metric, group=CUSTOM_GROUP, kind=str(resource), described=described
            )
        return entry, kind

    async def get_by_name(
        self,
        *,
        resource: GroupResource,
        namespace: str,
        name: str,
        metric: str,
        metric_selector: Selector,
    ) -> CustomSample:
        described = f"{resource} {name}"
        entry, kind = self._lookup(resource, namespace, metric, described=described)
        points = await self._points(entry, namespace, [name], EVERYTHING, metric_selector)
        for point in points:
            if point.labels.get(entry.resource_label) == name:
                return self._sample(entry, kind, namespace, name, metric, point)
        raise MetricNotFoundError(
            metric, group=CUSTOM_GROUP, kind=str(resource), described=described
        )

    async def get_by_selector(
        self,
        *,
        resource: GroupResource,
        namespace: str,
        selector: Selector,
        metric: str,
        metric_selector: Selector,
    ) -> Sequence[CustomSample]:
        entry, kind = self._lookup(resource, namespace, metric, described=str(resource))
        names: list[str] | None = None
        if self._api is not None and kind is not None:
            names = await self._object_names(self._api, kind, namespace, selector)
            if not names:
                return []
            selector = EVERYTHING
        points = await self._points(entry, namespace, names, selector, metric_selector)
        wanted = set(names) if names is not None else None
        samples: list[CustomSample] = []
        seen: set[str] = set()
        for point in points:
            name = point.labels.get(entry.resource_label)
            if not name or name in seen or (wanted is not None and name not in wanted):
                continue
            seen.add(name)
            samples.append(self._sample(entry, kind, namespace, name, metric, point))
        return samples

    def _sample(
        self,
        entry: _Entry,
        kind: ResourceKind | None,
        namespace: str,
        name: str,
        metric: str,
        point: _Point,
    ) -> CustomSample:
        ref = ObjectReference(
            kind=kind.kind if kind is not None else "",
            name=name,
            namespace=namespace if entry.namespaced else "",
            api_version=kind.api_version if kind is not None else "",
        )
        return CustomSample(
            described_object=ref, metric=metric, value=point.value, timestamp=point.at
        )

    async def _object_names(
        self, api: Api, kind: ResourceKind, namespace: str, selector: Selector
    ) -> list[str]:
        """The names of the objects `selector` matches, from the Kubernetes API."""
        resource = Resource(kind.group, kind.version, kind.plural, namespaced=kind.namespaced)
        where = f"{kind.plural} in namespace {namespace}" if kind.namespaced else kind.plural
        timeout = self._config.timeout
        try:
            async with asyncio.timeout(timeout):
                items, _ = await api.list(
                    resource,
                    namespace if kind.namespaced else None,
                    label_selector=str(selector) or None,
                )
        except TimeoutError:
            raise UnavailableError(
                f"listing {where}: no answer from Kubernetes within {timeout:g}s"
            ) from None
        except (KubeError, aiohttp.ClientError, OSError) as e:
            raise UnavailableError(f"listing {where}: {e}") from None
        return [str(item["metadata"]["name"]) for item in items if item.get("metadata")]

    async def _points(
        self,
        entry: _Entry,
        namespace: str,
        names: Sequence[str] | None,
        selector: Selector,
        metric_selector: Selector,
    ) -> list[_Point]:
        matchers = label_matchers(
            namespace=(entry.namespace_label, namespace) if entry.namespace_label else None,
            resource_label=entry.resource_label,
            names=names,
            selector=selector,
            metric_selector=metric_selector,
        )
        query = entry.rule.query.render(
            series=entry.series, label_matchers=matchers, group_by=entry.resource_label
        )
        return await self._cached(query, entry)

    async def _cached(self, query: str, entry: _Entry) -> list[_Point]:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for key, (expires, task) in list(self._values.items()):
            if expires <= now and task.done():
                del self._values[key]
        found = self._values.get(query)
        failed = found is not None and found[1].done() and _failed(found[1])
        if found is None or found[0] <= now or failed:
            task = asyncio.create_task(self._query(query, entry))
            task.add_done_callback(_retrieve)
            self._values[query] = (now + self._value_ttl, task)
        else:
            task = found[1]
        return await asyncio.shield(task)

    async def _query(self, query: str, entry: _Entry) -> list[_Point]:
        what = f"custom metrics rules[{entry.rule.index}] query {_shorten(query)!r}"
        hint = f"a metricsQuery must return an instant vector by {entry.resource_label}"
        samples = await self._call(
            lambda: self._client.query(query, what=what), what=what, hint=hint
        )
        points: list[_Point] = []
        for sample in samples:
            value = sample.value
            if math.isnan(value):
                value = 0.0
            elif math.isinf(value):
                continue
            at = datetime.fromtimestamp(sample.at, UTC)
            points.append(_Point(labels=dict(sample.labels), at=at, value=value))
        return points


def _failed(task: asyncio.Task[list[_Point]]) -> bool:
    return task.cancelled() or task.exception() is not None


def _retrieve(task: asyncio.Task[list[_Point]]) -> None:
    # Every asker may have gone (cancelled) before the call ended: mark its error as seen.
    if not task.cancelled():
        task.exception()
