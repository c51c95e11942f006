"""Rebalance, Updraft's method after Karpenter's: its lower bound, its limits, and that it
takes a fleet Karpenter's methods leave several percent over a fresh packing to within 5 %.

The fleet is ``bench.disruption``'s (run as `make bench` runs it, a subprocess): 40 nodes on
on-demand c/m/r, each holding twice its pods' requests, consolidated to the fixed point.
"""

from __future__ import annotations

import itertools

import pytest

from provisioner.disruption import methods
from tests.unit.provisioner.disruption.support import World, pool_json, unlimited
from tests.unit.test_bench_disruption import run_disruption_bench

POINTS = [(4.0, 8.0, 0.17), (4.0, 16.0, 0.192), (4.0, 32.0, 0.252), (8.0, 16.0, 0.34)]
"""(cpu, memory, price) of c5/m5/r5.xlarge-like and c5.2xlarge-like types."""


def _grid_bound(points: list[tuple[float, float, float]], cpu: float, mem: float) -> float:
    """The fractional cover by brute force: every mix of two types in 1/200 steps."""
    best = float("inf")
    for (c1, m1, p1), (c2, m2, p2) in itertools.product(points, repeat=2):
        for step in range(201):
            share = step / 200  # of the CPU taken from the first type
            x1 = cpu * share / c1
            x2 = cpu * (1 - share) / c2
            lack = mem - x1 * m1 - x2 * m2
            if lack > 0:  # top up with whichever of the two is cheaper per byte
                x1, x2 = (x1 + lack / m1, x2) if p1 / m1 <= p2 / m2 else (x1, x2 + lack / m2)
            best = min(best, x1 * p1 + x2 * p2)
    return best


@pytest.mark.parametrize(("cpu", "mem"), [(10.0, 10.0), (10.0, 30.0), (3.0, 60.0), (20.0, 45.0)])
def test_the_cover_bound_is_the_cheapest_fractional_mix(cpu: float, mem: float) -> None:
    bound, _ = methods._cover(POINTS, cpu, mem)
    assert bound == pytest.approx(_grid_bound(POINTS, cpu, mem), rel=0.01)
    assert bound <= min(p * max(cpu / c, mem / m) for c, m, p in POINTS) + 1e-9


def test_rebalance_needs_room_for_two_nodes_and_an_underutilized_policy() -> None:
    w = World()
    for _ in range(3):
        w.node("m5.xlarge", 2)
    candidates, _ = w.candidates()
    assert methods.rebalance(candidates, {("seed", "Underutilized"): 1}, w.cluster()) is None
    empty = World(pools=[pool_json(policy="WhenEmpty")])
    for _ in range(3):
        empty.node("m5.xlarge", 2)
    candidates, _ = empty.candidates()
    assert methods.rebalance(candidates, unlimited(empty), empty.cluster()) is None


def test_no_rebalance_when_the_fleet_is_already_packed_as_fresh() -> None:
    """Four full m5.xlarge (the seed's optimum for twelve 1-cpu pods): nothing is cheaper."""
    w = World()
    for _ in range(4):
        w.node("m5.xlarge", 3)
    candidates, _ = w.candidates()
    command, _ = methods.decide(candidates, unlimited(w), w.cluster())
    assert command is None


def test_rebalance_takes_the_bench_fleet_to_within_five_percent_of_fresh() -> None:
    report = run_disruption_bench("--nodes", "40", "--pools", "c-m-r-on-demand", "--repeat", "1")
    (cost,) = report["cost"]
    assert cost["fixed_point"]
    assert cost["commands"].get("rebalance: replace", 0) > 0
    assert cost["ratio_to_fresh"] <= 1.05
