"""The arithmetic of `updraft recommend`: nearest-rank percentiles, memory peaks per interval,
the margin, the per-pod floors and the rounding."""

from __future__ import annotations

import random

import pytest

from updraft.recommend import MIB, ContainerUsage, SizingPolicy, percentile, recommend
from updraft.recommend.sizing import interval_peaks


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 11)]  # 1..10
    assert percentile(values, 0.9) == 9.0  # 0.9 * 10 is 9.000000000000002 in floating point
    assert percentile(values, 0.91) == 10.0
    assert percentile(values, 1.0) == 10.0
    assert percentile(values, 0.05) == 1.0
    assert percentile([7.0], 0.9) == 7.0


def test_percentile_agrees_with_counting_on_random_samples() -> None:
    rng = random.Random(20)
    for _ in range(200):
        values = [rng.uniform(0, 4) for _ in range(rng.randrange(1, 300))]
        q = rng.choice([0.5, 0.9, 0.95, 0.99, 1.0])
        p = percentile(values, q)
        # Nearest rank: at least q of the samples are <= p, and fewer than q are < p.
        assert sum(v <= p for v in values) >= q * len(values) - 1e-9
        assert sum(v < p for v in values) < q * len(values)


def test_percentile_refuses_no_samples_and_bad_q() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 0.9)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        percentile([1.0], 0.0)


def test_interval_peaks_take_the_highest_point_of_each_interval() -> None:
    points = [(10.0, 5.0), (50.0, 9.0), (100.0, 10.0), (150.0, 2.0), (310.0, 8.0)]
    # (0, 100], (100, 200], (300, 400]: the point at 100 closes the first interval.
    assert interval_peaks(points, start=0.0, interval=100.0) == [10.0, 2.0, 8.0]


def test_cpu_is_the_percentile_plus_the_margin_rounded_up_to_millicores() -> None:
    usage = ContainerUsage(cpu=[0.1] * 80 + [0.4] * 15 + [2.0] * 5, memory_peaks=[])
    r = recommend(usage, containers=1, policy=SizingPolicy())
    assert r.cpu_percentile_cores == 0.4
    assert r.cpu_millis == 460  # 0.4 x 1.15, not 461 from floating noise
    assert r.memory_bytes is None
    assert (r.cpu_samples, r.memory_samples) == (100, 0)


def test_memory_is_the_peak_plus_the_margin_rounded_up_to_mebibytes() -> None:
    usage = ContainerUsage(cpu=[], memory_peaks=[400 * MIB, 1000 * MIB + 1])
    r = recommend(usage, containers=1, policy=SizingPolicy())
    # Nearest rank 0.9 of two peaks is the higher one.
    assert r.memory_percentile_bytes == 1000 * MIB + 1
    assert r.memory_bytes == 1151 * MIB  # 1150.000001 MiB, rounded up
    assert r.cpu_millis is None


def test_the_floors_are_per_pod_and_split_over_its_containers() -> None:
    idle = ContainerUsage(cpu=[0.001], memory_peaks=[MIB])
    one = recommend(idle, containers=1, policy=SizingPolicy())
    assert (one.cpu_millis, one.memory_bytes) == (25, 250 * MIB)
    three = recommend(idle, containers=3, policy=SizingPolicy())
    assert (three.cpu_millis, three.memory_bytes) == (9, 84 * MIB)  # 25/3 -> 9m, 250/3 -> 84Mi


def test_flags_change_percentile_and_margin() -> None:
    usage = ContainerUsage(cpu=[float(v) for v in range(1, 101)], memory_peaks=[100 * MIB])
    policy = SizingPolicy(cpu_percentile=0.5, margin=0.0, min_cpu_millis=0, min_memory_bytes=0)
    r = recommend(usage, containers=1, policy=policy)
    assert (r.cpu_millis, r.memory_bytes) == (50_000, 100 * MIB)
