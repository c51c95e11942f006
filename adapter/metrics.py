"""The metrics API's own Prometheus series: requests by API group, metric and status code, and
their latency by group.

Owns the metric objects and the aiohttp middleware that counts every request once its answer
(a `metav1.Status` error too) is known. It must not look at request bodies or queries, and it
names a metric only in an answer the adapter resolved (2xx, 5xx): the names in 4xx paths are
the caller's, so they would let any client grow the series without bound.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Counter, Histogram

from adapter.auth import Handler
from adapter.paths import split_path
from adapter.providers import CUSTOM_GROUP, EXTERNAL_GROUP

__all__ = ["AdapterMetrics", "metrics_middleware"]

GROUPS = frozenset({EXTERNAL_GROUP, CUSTOM_GROUP})


class AdapterMetrics:
    """On an injectable registry; a fresh private one when none is given."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = CollectorRegistry() if registry is None else registry
        self.requests = Counter(
            "updraft_adapter_requests",
            "Metrics API requests answered, by API group (external.metrics.k8s.io, "
            "custom.metrics.k8s.io, '' for discovery and probes), metric ('' when the answer "
            "named none or was a 4xx) and HTTP status code.",
            ["group", "metric", "code"],
            registry=registry,
        )
        self.latency = Histogram(
            "updraft_adapter_request_duration_seconds",
            "Seconds from a metrics API request's arrival to its answer, by API group.",
            ["group"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )


def _labels(raw_path: str) -> tuple[str, str]:
    """(group, metric) of a path: `apis/<group>/<version>/.../<metric>`; a metric path has at
    least six segments in both groups (external namespaced, custom root-scoped)."""
    segments = split_path(raw_path)
    if len(segments) < 2 or segments[0] != "apis" or segments[1] not in GROUPS:
        return "", ""
    return segments[1], segments[-1] if len(segments) >= 6 else ""


def metrics_middleware(metrics: AdapterMetrics) -> Middleware:
    """Outermost: it sees the code the client gets, errors and auth refusals included."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        code = 500
        try:
            response = await handler(request)
            code = response.status
            return response
        except web.HTTPException as e:
            code = e.status
            raise
        except asyncio.CancelledError:
            code = 499  # the client went away before the answer (nginx's code for it)
            raise
        finally:
            group, metric = _labels(request.rel_url.raw_path)
            if 400 <= code < 500:
                metric = ""
            metrics.requests.labels(group, metric, str(code)).inc()
            metrics.latency.labels(group).observe(time.perf_counter() - started)

    return middleware
