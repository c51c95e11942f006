"""Each disruption method's decision on small hand-made clusters, priced from the catalog."""

from __future__ import annotations

import dataclasses

from provisioner.disruption import methods
from provisioner.disruption.methods import Command
from tests.unit.provisioner.disruption.support import World, pool_json, unlimited


def _names(command: Command | None) -> list[str]:
    assert command is not None
    return sorted(c.node_name for c in command.candidates)


def test_emptiness_takes_every_empty_consolidatable_node_within_budget() -> None:
    w = World(pools=[pool_json(budgets=[{"nodes": "2"}])])
    empty = [w.node("c5.large", 0) for _ in range(3)]
    w.node("c5.large", 1)
    w.node("c5.large", 0, idle=1)  # still inside consolidateAfter
    candidates, _ = w.candidates()
    room = {("seed", "Empty"): 2}
    command = methods.emptiness(candidates, room)
    assert command is not None
    assert len(command.candidates) == 2
    assert set(_names(command)) <= set(empty)


def test_a_node_whose_pods_fit_elsewhere_is_deleted() -> None:
    w = World()
    w.node("m5.xlarge", 2)
    lone = w.node("c5.large", 1)
    candidates, _ = w.candidates()
    command, _ = methods.single_node(candidates, unlimited(w), w.cluster())
    assert command is not None
    assert command.decision == "delete"
    assert _names(command) == [lone]


def test_one_pod_on_a_big_node_is_replaced_by_the_cheapest_that_holds_it() -> None:
    w = World()
    big = w.node("m5.xlarge", 1)
    candidates, _ = w.candidates()
    command, _ = methods.single_node(candidates, unlimited(w), w.cluster())
    assert command is not None
    assert _names(command) == [big]
    assert [r.instance_types[0].name for r in command.replacements] == ["c5.large"]
    assert command.savings > 0


def test_no_replacement_that_is_not_cheaper() -> None:
    w = World()
    w.node("c5.large", 1)
    candidates, _ = w.candidates()
    command, why = methods.single_node(candidates, unlimited(w), w.cluster())
    assert command is None
    assert "cheaper" in next(iter(why.values()))


def test_settling_nodes_take_no_pods() -> None:
    w = World()
    fresh = w.node("m5.xlarge", 1, idle=1)
    w.node("c5.large", 1)
    candidates, _ = w.candidates()
    command, _ = methods.single_node(
        [c for c in candidates if c.consolidatable], unlimited(w), w.cluster(frozenset({fresh}))
    )
    assert command is None  # its pod may not move onto the node inside consolidateAfter


def test_multi_node_brings_the_seed_scale_down_to_five_onto_two_nodes() -> None:
    """The e2e seed scaled from 12 (four full m5.xlarge) to 5: the three nodes left with one
    pod each lead Karpenter's order; two of them go, their pods onto the other two nodes.
    Three would need two new nodes (two c5.large cost less than one m5.xlarge), so the binary
    search stops at two. The pool's limits leave room, so they do not change the decision."""
    w = World()
    two = w.node("m5.xlarge", 2)
    ones = [w.node("m5.xlarge", 1) for _ in range(3)]
    candidates, _ = w.candidates()
    ordered = methods._ordered(candidates, unlimited(w))
    assert sorted(c.node_name for c in ordered[:3]) == sorted(ones)
    assert ordered[3].node_name == two
    command = methods.multi_node(candidates, unlimited(w), w.cluster())
    assert command is not None
    assert command.decision == "delete"
    assert set(_names(command)) < set(ones)
    assert len(command.candidates) == 2


def test_multi_node_takes_the_longest_valid_prefix() -> None:
    """Four m5.xlarge holding one pod each: three of them (a tie broken by name) go, two of
    their pods onto the fourth and one onto a c5.large; all four would need two nodes."""
    w = World()
    ones = [w.node("m5.xlarge", 1) for _ in range(4)]
    candidates, _ = w.candidates()
    command = methods.multi_node(candidates, unlimited(w), w.cluster())
    assert _names(command) == sorted(ones)[:3]
    assert command is not None
    assert [r.instance_types[0].name for r in command.replacements] == ["c5.large"]


def test_multi_node_respects_the_underutilized_budget() -> None:
    w = World()
    for _ in range(4):
        w.node("m5.xlarge", 1)
    candidates, _ = w.candidates()
    command = methods.multi_node(candidates, {("seed", "Underutilized"): 2}, w.cluster())
    assert command is not None
    assert len(command.candidates) == 2


def test_when_empty_pools_are_not_consolidated_when_underutilized() -> None:
    w = World(pools=[pool_json(policy="WhenEmpty")])
    w.node("m5.xlarge", 1)
    candidates, _ = w.candidates()
    assert methods.multi_node(candidates, unlimited(w), w.cluster()) is None
    assert methods.single_node(candidates, unlimited(w), w.cluster())[0] is None


def test_savings_ratio_counts_eviction_costs() -> None:
    w = World()
    cheap = w.node("m5.xlarge", 1)
    w.node(
        "m5.xlarge",
        1,
        pod_extra={
            "metadata": {"annotations": {"controller.kubernetes.io/pod-deletion-cost": str(2**30)}}
        },
    )
    candidates, _ = w.candidates()
    ordered = methods._ordered(candidates, unlimited(w))
    assert ordered[0].node_name == cheap


def _blocked_by_budgets(w: World, room: dict[tuple[str, str], int]) -> dict[str, str | None]:
    candidates, _ = w.candidates()
    return {c.node_name: methods.budget_blocks(c, room) for c in candidates}


def test_a_closed_underutilized_budget_is_named_for_an_underutilized_node() -> None:
    w = World()
    big = w.node("m5.xlarge", 1)
    closed = {**unlimited(w), ("seed", "Underutilized"): 0}
    told = _blocked_by_budgets(w, closed)[big]
    assert told == "the budgets of NodePool seed allow no more Underutilized disruptions now"
    assert _blocked_by_budgets(w, unlimited(w))[big] is None


def test_an_empty_node_is_held_by_budgets_only_when_consolidation_is_closed_too() -> None:
    w = World()
    empty = w.node("c5.large", 0)
    no_empty = {**unlimited(w), ("seed", "Empty"): 0}
    assert _blocked_by_budgets(w, no_empty)[empty] is None  # consolidation may still delete it
    neither = {**no_empty, ("seed", "Underutilized"): 0}
    told = _blocked_by_budgets(w, neither)[empty]
    assert told is not None
    assert "Empty or Underutilized" in told


def test_budgets_are_not_blamed_for_nodes_no_method_wants() -> None:
    w = World(pools=[pool_json(policy="WhenEmpty")])
    busy = w.node("m5.xlarge", 1)
    settling = w.node("c5.large", 0, idle=1)  # inside consolidateAfter
    closed = dict.fromkeys(unlimited(w), 0)
    told = _blocked_by_budgets(w, closed)
    assert told[busy] is None
    assert told[settling] is None


def _drifted_next_to_room() -> tuple[World, str, str]:
    """A c5.large its pool no longer allows, and an m5.xlarge with room for its pod."""
    w = World(pools=[pool_json(types=["m5.large", "m5.xlarge"])])
    old = w.node("c5.large", 1)
    room = w.node("m5.xlarge", 1)
    return w, old, room


def test_drift_deletes_a_node_whose_pods_fit_on_an_initialized_one() -> None:
    w, old, _ = _drifted_next_to_room()
    candidates, _ = w.candidates()
    command, _ = methods.drift(candidates, unlimited(w), w.cluster())
    assert command is not None
    assert command.decision == "delete"
    assert _names(command) == [old]


def test_drift_does_not_move_pods_onto_a_node_not_initialized_yet() -> None:
    """A replacement a crashed command left behind is still booting: the drifted node waits
    for it instead of sending its pods to wait Pending for it (or launching a second one)."""
    w, old, room = _drifted_next_to_room()
    candidates, _ = w.candidates()
    cluster = w.cluster(booting=frozenset({room}))
    command, why = methods.drift(candidates, unlimited(w), cluster)
    assert command is None
    assert f"would move to {room}, not initialized yet" in why[old]


def test_consolidation_does_not_count_on_an_in_flight_claim() -> None:
    w = World()
    spare = w.node("m5.xlarge", 0, idle=1)
    lone = w.node("c5.large", 1)
    candidates, _ = w.candidates()
    assert methods.single_node(candidates, unlimited(w), w.cluster())[0] is not None
    cluster = w.cluster()
    in_flight = [
        dataclasses.replace(v, in_flight=True, initialized=False) if v.name == spare else v
        for v in cluster.views
    ]
    cluster = dataclasses.replace(cluster, views=in_flight)
    command, why = methods.single_node(
        [c for c in candidates if c.node_name == lone], unlimited(w), cluster
    )
    assert command is None
    assert f"would move to {spare}, not initialized yet" in why[lone]


def test_a_node_whose_pods_would_split_over_cheaper_nodes_is_replaced_by_one() -> None:
    """Two 1-cpu pods on an m5.2xlarge: the simulation alone would give each a c5.large,
    two new nodes, which no consolidation can launch; one m5.xlarge holds both for half the
    price, so single-node consolidation replaces the node with it."""
    w = World(pools=[pool_json(types=["c5.large", "m5.large", "m5.xlarge", "m5.2xlarge"])])
    big = w.node("m5.2xlarge", 2)
    candidates, _ = w.candidates()
    command, why = methods.single_node(candidates, unlimited(w), w.cluster())
    assert command is not None, why
    assert _names(command) == [big]
    assert [r.instance_types[0].name for r in command.replacements] == ["m5.xlarge"]
    assert round(command.savings, 3) == 0.192
