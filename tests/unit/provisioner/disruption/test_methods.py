"""Each disruption method's decision on small hand-made clusters, priced from the catalog."""

from __future__ import annotations

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
