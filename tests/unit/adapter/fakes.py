"""In-memory providers behind the adapter's own protocols, for tests.

They keep what a test put in, apply selectors the way a real source would, record what they
were asked, and fail on demand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from adapter import (
    CUSTOM_GROUP,
    EXTERNAL_GROUP,
    CustomMetricInfo,
    CustomSample,
    ExternalSample,
    GroupResource,
    MetricNotFoundError,
    MetricRef,
    ObjectReference,
    Selector,
)

AT = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


@dataclass
class Series:
    labels: Mapping[str, str]
    value: float


@dataclass
class FakeExternalMetrics:
    """Metrics by (namespace or None, name) -> series."""

    series: dict[tuple[str | None, str], list[Series]] = field(default_factory=dict)
    failure: Exception | None = None
    asked: list[tuple[str, str, str]] = field(default_factory=list)

    def put(self, name: str, *series: Series, namespace: str | None = None) -> None:
        self.series[(namespace, name)] = list(series)

    async def list_metrics(self) -> Sequence[MetricRef]:
        return [MetricRef(name=name, namespace=ns) for ns, name in self.series]

    async def get(
        self, *, namespace: str, name: str, selector: Selector
    ) -> Sequence[ExternalSample]:
        self.asked.append((namespace, name, str(selector)))
        if self.failure is not None:
            raise self.failure
        found = self.series.get((namespace, name), self.series.get((None, name)))
        if found is None:
            raise MetricNotFoundError(name, group=EXTERNAL_GROUP)
        return [
            ExternalSample(metric_name=name, value=s.value, timestamp=AT, labels=s.labels)
            for s in found
            if selector.matches(s.labels)
        ]


@dataclass
class Obj:
    resource: GroupResource
    kind: str
    namespace: str
    name: str
    labels: Mapping[str, str]
    metrics: Mapping[str, float]
    api_version: str = "/v1"


@dataclass
class FakeCustomMetrics:
    objects: list[Obj] = field(default_factory=list)
    failure: Exception | None = None
    asked: list[dict[str, str]] = field(default_factory=list)

    async def list_metrics(self) -> Sequence[CustomMetricInfo]:
        return [
            CustomMetricInfo(resource=o.resource, metric=m, namespaced=bool(o.namespace))
            for o in self.objects
            for m in o.metrics
        ]

    def _sample(self, obj: Obj, metric: str) -> CustomSample:
        ref = ObjectReference(
            kind=obj.kind, name=obj.name, namespace=obj.namespace, api_version=obj.api_version
        )
        return CustomSample(
            described_object=ref,
            metric=metric,
            value=obj.metrics[metric],
            timestamp=AT,
            window_seconds=60,
        )

    def _of(self, resource: GroupResource, namespace: str) -> list[Obj]:
        return [o for o in self.objects if o.resource == resource and o.namespace == namespace]

    async def get_by_name(
        self,
        *,
        resource: GroupResource,
        namespace: str,
        name: str,
        metric: str,
        metric_selector: Selector,
    ) -> CustomSample:
        self.asked.append(
            {"resource": str(resource), "namespace": namespace, "name": name, "metric": metric}
        )
        if self.failure is not None:
            raise self.failure
        for obj in self._of(resource, namespace):
            if obj.name == name and metric in obj.metrics:
                return self._sample(obj, metric)
        raise MetricNotFoundError(
            metric, group=CUSTOM_GROUP, kind=str(resource), described=f"{resource} {name}"
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
        self.asked.append(
            {
                "resource": str(resource),
                "namespace": namespace,
                "selector": str(selector),
                "metric": metric,
                "metric_selector": str(metric_selector),
            }
        )
        if self.failure is not None:
            raise self.failure
        found = [
            self._sample(o, metric)
            for o in self._of(resource, namespace)
            if metric in o.metrics and selector.matches(o.labels)
        ]
        if not found:
            raise MetricNotFoundError(
                metric, group=CUSTOM_GROUP, kind=str(resource), described=str(resource)
            )
        return found
