"""Container usage history from Prometheus, in chunks: what ``sizing`` is fed.

Owns the two PromQL queries (cAdvisor's series as the kubelet exports them), cutting a long
window into range queries Prometheus accepts (at most 11,000 points per series, and one day per
query by default so no answer grows large), and the progress line on stderr. It talks to
Prometheus only through the project's one client (``scalers.PrometheusClient``).

- CPU: ``rate(container_cpu_usage_seconds_total[RATE_WINDOW])`` at every step, summed per
  (namespace, pod, container): a container restarted inside the window has two series.
- Memory: ``max_over_time(container_memory_working_set_bytes[STEP])`` at every step, so the
  peak of every raw sample is seen, not only the sample the step lands on.

Series without a ``container`` label, or with ``container="POD"`` (the pause container), are
the pod's cgroup totals, not a container's; both queries leave them out.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from kits import format_duration
from scalers import PrometheusClient, RangeSeries

__all__ = [
    "MAX_POINTS",
    "ContainerKey",
    "History",
    "Progress",
    "UsageQuery",
    "chunks",
    "fetch_history",
]

MAX_POINTS = 11_000
"""Prometheus refuses a range query of more points per series than this."""

ContainerKey = tuple[str, str, str]
"""(namespace, pod, container)."""

_SELECTOR = 'container!="",container!="POD"'


@dataclass(frozen=True, slots=True)
class UsageQuery:
    start: float
    """Unix seconds; the first evaluation is one step after it."""
    end: float
    step: float
    rate_window: float
    chunk: float
    """Seconds of window per range query (fewer when MAX_POINTS would be passed)."""
    namespace: str | None = None


@dataclass
class History:
    cpu: dict[ContainerKey, list[tuple[float, float]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    memory: dict[ContainerKey, list[tuple[float, float]]] = field(
        default_factory=lambda: defaultdict(list)
    )


def _matchers(namespace: str | None) -> str:
    if namespace is None:
        return _SELECTOR
    escaped = namespace.replace("\\", "\\\\").replace('"', '\\"')
    return f'{_SELECTOR},namespace="{escaped}"'


def cpu_query(query: UsageQuery) -> str:
    window = format_duration(query.rate_window)
    return (
        "sum by (namespace, pod, container) "
        f"(rate(container_cpu_usage_seconds_total{{{_matchers(query.namespace)}}}[{window}]))"
    )


def memory_query(query: UsageQuery) -> str:
    window = format_duration(query.step)
    return (
        "max by (namespace, pod, container) "
        f"(max_over_time(container_memory_working_set_bytes{{{_matchers(query.namespace)}}}"
        f"[{window}]))"
    )


def chunks(query: UsageQuery) -> list[tuple[float, float]]:
    """(first, last) evaluation times of each range query: every step after ``start`` up to
    ``end``, each time in exactly one chunk, at most MAX_POINTS and ``chunk`` seconds each."""
    points = math.floor((query.end - query.start) / query.step + 1e-9)
    per = max(1, min(MAX_POINTS, int(query.chunk // query.step)))
    out = []
    for first in range(1, points + 1, per):
        last = min(points, first + per - 1)
        out.append((query.start + first * query.step, query.start + last * query.step))
    return out


class Progress:
    """``recommend: querying Prometheus 3/16`` rewritten in place on a stream; silent when
    off (the default for a stream that is not a terminal)."""

    def __init__(self, total: int, *, enabled: bool, stream: TextIO | None = None) -> None:
        self._total = total
        self._done = 0
        self._enabled = enabled
        self._stream = stream if stream is not None else sys.stderr

    def step(self) -> None:
        self._done += 1
        if self._enabled:
            self._stream.write(f"\rrecommend: querying Prometheus {self._done}/{self._total}")
            if self._done == self._total:
                self._stream.write("\n")
            self._stream.flush()


def _key(series: RangeSeries) -> ContainerKey | None:
    labels = series.labels
    names = (labels.get("namespace"), labels.get("pod"), labels.get("container"))
    if not all(names):
        return None
    return (str(names[0]), str(names[1]), str(names[2]))


async def fetch_history(
    client: PrometheusClient,
    query: UsageQuery,
    *,
    progress: Callable[[int], Progress] | None = None,
) -> History:
    """Every container's CPU rate and memory peaks over the window, chunk by chunk (CPU and
    memory of one chunk, then the next). Errors are the ``scalers`` tree's, unchanged."""
    history = History()
    spans: Sequence[tuple[float, float]] = chunks(query)
    bar = progress(2 * len(spans)) if progress is not None else None
    cpu, memory = cpu_query(query), memory_query(query)
    where = f"Prometheus at {client.origin}"
    for first, last in spans:
        for promql, into in ((cpu, history.cpu), (memory, history.memory)):
            answer = await client.query_range(
                promql, start=first, end=last, step=query.step, what=where
            )
            for series in answer:
                key = _key(series)
                if key is not None:
                    into[key].extend(
                        (at, value) for at, value in series.points if math.isfinite(value)
                    )
            if bar is not None:
                bar.step()
    return history
