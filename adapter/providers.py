"""The narrow interfaces the adapter reads metric values through, and their value types.

Owns the `ExternalMetrics` and `CustomMetrics` protocols (the lead wires `scalers`' MetricCache
and the MetricSource informer to them), the frozen value types that cross them, and `NoMetrics`,
the provider of a group that has nothing to serve. It must not import `scalers` or `kube`, and
must not know about HTTP: a provider speaks in errors from `adapter.errors`.

Error contract for every `get*` method: raise `MetricNotFoundError` when the metric (or the
object it describes) does not exist, `UnavailableError` when the upstream is down and no
fallback applies. Any other exception becomes a 500 whose body does not repeat its text.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from adapter.errors import MetricNotFoundError
from adapter.selectors import Selector

EXTERNAL_GROUP = "external.metrics.k8s.io"
CUSTOM_GROUP = "custom.metrics.k8s.io"

Number = float | int | Decimal


@dataclass(frozen=True)
class MetricRef:
    """An external metric that exists. `namespace` None means "in every namespace"."""

    name: str
    namespace: str | None = None


def match_name(requested: str, names: Collection[str]) -> str | None:
    """The one case rule of both front doors: `requested` itself if it is among `names`, else
    the first (sorted) name that differs only in case, else None. client-go lowercases the
    metric segment of the path (an HPA asking for `queueLength` sends `queuelength`), so an
    exact match cannot be required; the exact spelling wins where two names differ in case."""
    if requested in names:
        return requested
    folded = requested.lower()
    candidates = [n for n in names if n.lower() == folded]
    return min(candidates) if candidates else None


@dataclass(frozen=True)
class ExternalSample:
    """One item of an `ExternalMetricValueList`. `timestamp` must be timezone-aware."""

    metric_name: str
    value: Number
    timestamp: datetime
    labels: Mapping[str, str] = field(default_factory=dict)
    window_seconds: int | None = None


class ExternalMetrics(Protocol):
    """What serves `external.metrics.k8s.io/v1beta1`."""

    async def list_metrics(self) -> Sequence[MetricRef]:
        """Every external metric that exists now. Called for each discovery request and when a
        name is not yet known, so it must be cheap (an in-memory view) and must not fail."""
        ...

    async def get(
        self, *, namespace: str, name: str, selector: Selector
    ) -> Sequence[ExternalSample]:
        """The samples of metric `name` (exactly as `list_metrics` spells it) for an HPA in
        `namespace`, restricted to the series `selector` matches."""
        ...


@dataclass(frozen=True, order=True)
class GroupResource:
    """A Kubernetes resource as a path segment spells it: `pods`, `deployments.apps`."""

    resource: str
    group: str = ""

    @classmethod
    def parse(cls, segment: str) -> GroupResource:
        resource, _, group = segment.partition(".")
        return cls(resource=resource, group=group)

    def __str__(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource


@dataclass(frozen=True)
class CustomMetricInfo:
    """A custom metric that exists for objects of one resource."""

    resource: GroupResource
    metric: str
    namespaced: bool = True


@dataclass(frozen=True)
class ObjectReference:
    """`describedObject`: the object a custom metric value describes. `api_version` is written
    as given (the Go helpers write core objects as `/v1`; the HPA reads only `name`)."""

    kind: str
    name: str
    namespace: str = ""
    api_version: str = ""


@dataclass(frozen=True)
class CustomSample:
    """One item of a `MetricValueList`."""

    described_object: ObjectReference
    metric: str
    value: Number
    timestamp: datetime
    window_seconds: int | None = None


class CustomMetrics(Protocol):
    """What serves `custom.metrics.k8s.io` v1beta1 and v1beta2 (both read the same values).

    `namespace` is "" for root-scoped objects (nodes, namespaces). `resource` is as the client
    spelled it, lowercased (plural or singular; normalising needs a RESTMapper, so it is the
    provider's job). `metric_selector` restricts the metric's series (`metricLabelSelector`).
    """

    async def list_metrics(self) -> Sequence[CustomMetricInfo]:
        """Every custom metric that exists now; cheap and infallible, like the external one."""
        ...

    async def get_by_name(
        self,
        *,
        resource: GroupResource,
        namespace: str,
        name: str,
        metric: str,
        metric_selector: Selector,
    ) -> CustomSample:
        """The value of `metric` for the one object `name`."""
        ...

    async def get_by_selector(
        self,
        *,
        resource: GroupResource,
        namespace: str,
        selector: Selector,
        metric: str,
        metric_selector: Selector,
    ) -> Sequence[CustomSample]:
        """The values of `metric` for every object that `selector` matches."""
        ...


class NoMetrics:
    """A provider with nothing to serve, for a group that is registered but has no source yet."""

    async def list_metrics(self) -> Sequence[MetricRef]:
        return ()

    async def get(
        self, *, namespace: str, name: str, selector: Selector
    ) -> Sequence[ExternalSample]:
        raise MetricNotFoundError(name, group=EXTERNAL_GROUP)


class NoCustomMetrics:
    """The custom-metrics counterpart of `NoMetrics`."""

    async def list_metrics(self) -> Sequence[CustomMetricInfo]:
        return ()

    async def get_by_name(
        self,
        *,
        resource: GroupResource,
        namespace: str,
        name: str,
        metric: str,
        metric_selector: Selector,
    ) -> CustomSample:
        raise MetricNotFoundError(metric, group=CUSTOM_GROUP, described=f"{resource} {name}")

    async def get_by_selector(
        self,
        *,
        resource: GroupResource,
        namespace: str,
        selector: Selector,
        metric: str,
        metric_selector: Selector,
    ) -> Sequence[CustomSample]:
        raise MetricNotFoundError(metric, group=CUSTOM_GROUP, described=str(resource))
