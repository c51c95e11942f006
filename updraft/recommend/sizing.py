"""The arithmetic of a recommendation: usage samples in, one container's requests out.

Owns the percentile, the memory peaks per interval, the safety margin, the per-pod minimum and
the rounding. It is pure (no I/O, no clock): Prometheus and Kubernetes are other modules'.

The defaults are the Vertical Pod Autoscaler recommender's documented flag defaults
(vertical-pod-autoscaler/docs/flags.md in kubernetes/autoscaler, the recommender's table):

- ``--target-cpu-percentile`` 0.9: CPU at the 90th percentile of the usage samples;
- ``--target-memory-percentile`` 0.9 over ``--memory-aggregation-interval`` peaks (24h): one
  memory sample per container and interval, its peak working set. Over a window of up to nine
  intervals the 90th percentile of the peaks is the highest peak;
- ``--recommendation-margin-fraction`` 0.15: 15 % added to both;
- ``--pod-recommendation-min-cpu-millicores`` 25 and ``--pod-recommendation-min-memory-mb``
  250 (MiB in the recommender's code): floors per pod, split evenly over its containers;
- ``--round-cpu-millicores`` 1: CPU rounded up to whole millicores;
- ``--recommender-interval`` 1m: the sampling step (``usage``'s default).

Where this differs from the recommender, on purpose (a report over a fixed window, which a
test can recompute exactly): every sample weighs the same (the recommender's histograms decay
with a half-life and weigh CPU samples by the request), percentiles are exact nearest-rank
ones over the samples (not bucket bounds of an exponential histogram), and memory is rounded
up to whole MiB so a patch reads well.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "MIB",
    "ContainerUsage",
    "Recommendation",
    "SizingPolicy",
    "interval_peaks",
    "percentile",
    "recommend",
]

MIB = 2**20
_FUZZ = 1e-6
"""Floating noise tolerated before rounding up: a rate of exactly 0.46 cores read back as
0.46000000000000002 is 460m, not 461m."""


@dataclass(frozen=True, slots=True)
class SizingPolicy:
    """How usage becomes requests; every default is the VPA recommender's (module docstring)."""

    cpu_percentile: float = 0.9
    """``--target-cpu-percentile``: CPU usage percentile the request covers."""
    memory_percentile: float = 0.9
    """``--target-memory-percentile``, taken over the per-interval peaks."""
    memory_interval: float = 24 * 3600.0
    """``--memory-aggregation-interval`` (24h): one peak per container per interval."""
    margin: float = 0.15
    """``--recommendation-margin-fraction``: added to both CPU and memory."""
    min_cpu_millis: int = 25
    """``--pod-recommendation-min-cpu-millicores``: per pod, split over its containers."""
    min_memory_bytes: int = 250 * MIB
    """``--pod-recommendation-min-memory-mb`` (MiB): per pod, split over its containers."""


@dataclass(frozen=True, slots=True)
class ContainerUsage:
    """What Prometheus said of one container name across a workload's pods."""

    cpu: Sequence[float]
    """CPU usage samples in cores (a rate per pod per step), every pod's together."""
    memory_peaks: Sequence[float]
    """Peak working set in bytes per pod and memory interval."""


@dataclass(frozen=True, slots=True)
class Recommendation:
    cpu_millis: int | None
    """None: no CPU samples (the request stays)."""
    memory_bytes: int | None
    """None: no memory samples (the request stays)."""
    cpu_percentile_cores: float | None
    """The percentile itself, before margin, floor and rounding."""
    memory_percentile_bytes: float | None
    cpu_samples: int
    memory_samples: int


def percentile(values: Iterable[float], q: float) -> float:
    """The nearest-rank ``q``-percentile (0 < q <= 1): the smallest sample such that at least
    a fraction ``q`` of the samples are at or below it. ``values`` must not be empty."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no samples")
    if not 0 < q <= 1:
        raise ValueError(f"percentile {q!r} is not in (0, 1]")
    # round(): 0.9 * 10 is 9.000000000000002 in floating point, and rank 9 is meant.
    rank = max(1, math.ceil(round(q * len(ordered), 9)))
    return ordered[rank - 1]


def interval_peaks(
    points: Iterable[tuple[float, float]], *, start: float, interval: float
) -> list[float]:
    """The highest value in each ``interval`` (counted from ``start``) that has a point.
    Intervals are closed on the right, as a step's value covers the step before it: the
    point at ``start + interval`` is the first interval's."""
    peaks: dict[int, float] = {}
    for at, value in points:
        index = math.ceil(round((at - start) / interval, 9)) - 1
        if index not in peaks or value > peaks[index]:
            peaks[index] = value
    return [peaks[i] for i in sorted(peaks)]


def _up(value: float, unit: float) -> int:
    """``value`` rounded up to a whole number of ``unit``, as a count of units."""
    return max(0, math.ceil(value / unit - _FUZZ))


def recommend(usage: ContainerUsage, *, containers: int, policy: SizingPolicy) -> Recommendation:
    """Requests for one container of a pod with ``containers`` containers (the pod's floors
    are split over them)."""
    share = max(1, containers)
    cpu_millis = cpu_value = None
    if usage.cpu:
        cpu_value = percentile(usage.cpu, policy.cpu_percentile)
        raw = _up(cpu_value * (1 + policy.margin) * 1000, 1)
        cpu_millis = max(raw, math.ceil(policy.min_cpu_millis / share))
    memory_bytes = memory_value = None
    if usage.memory_peaks:
        memory_value = percentile(usage.memory_peaks, policy.memory_percentile)
        raw_mib = _up(memory_value * (1 + policy.margin), MIB)
        floor_mib = math.ceil(policy.min_memory_bytes / share / MIB)
        memory_bytes = max(raw_mib, floor_mib) * MIB
    return Recommendation(
        cpu_millis=cpu_millis,
        memory_bytes=memory_bytes,
        cpu_percentile_cores=cpu_value,
        memory_percentile_bytes=memory_value,
        cpu_samples=len(usage.cpu),
        memory_samples=len(usage.memory_peaks),
    )
