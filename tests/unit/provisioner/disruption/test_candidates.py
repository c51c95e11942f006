"""Which nodes are disruption candidates, and why the others are not."""

from __future__ import annotations

from datetime import timedelta

from provisioner.disruption.candidates import eviction_cost
from tests.unit.provisioner.disruption.support import NOW, World, pool_json


def test_every_managed_initialized_node_is_a_candidate() -> None:
    w = World()
    w.node("c5.large", 1)
    w.node("m5.xlarge", 0)
    candidates, blocked = w.candidates()
    assert len(candidates) == 2
    assert not blocked


def test_a_do_not_disrupt_pod_blocks_its_node() -> None:
    w = World()
    name = w.node(
        "c5.large",
        1,
        pod_extra={"metadata": {"annotations": {"karpenter.sh/do-not-disrupt": "true"}}},
    )
    candidates, blocked = w.candidates()
    assert not candidates
    assert [b.claim for b in blocked] == [name]
    assert "do-not-disrupt" in blocked[0].message


def test_a_do_not_disrupt_node_is_no_candidate() -> None:
    w = World()
    w.node("c5.large", 0, node_annotations={"updraft.io/do-not-disrupt": "true"})
    candidates, blocked = w.candidates()
    assert not candidates
    assert "updraft.io/do-not-disrupt" in blocked[0].message


def _pdb(name: str, allowed: int) -> dict[str, object]:
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "inflate"}}},
        "status": {"disruptionsAllowed": allowed},
    }


def test_a_pdb_allowing_no_disruption_blocks_the_node_and_is_named() -> None:
    w = World()
    w.node("c5.large", 1)
    w.pdbs = [_pdb("inflate", 0)]
    candidates, blocked = w.candidates()
    assert not candidates
    assert "PDB default/inflate" in blocked[0].message
    w.pdbs = [_pdb("inflate", 1)]
    assert len(w.candidates()[0]) == 1


def test_a_pod_under_two_pdbs_blocks() -> None:
    w = World()
    w.node("c5.large", 1)
    w.pdbs = [_pdb("a", 5), _pdb("b", 5)]
    candidates, blocked = w.candidates()
    assert not candidates
    assert "more than one PDB" in blocked[0].message


def test_consolidatable_only_once_consolidate_after_has_passed() -> None:
    w = World()
    w.node("c5.large", 0, idle=5)
    (c,), _ = w.candidates()
    assert not c.consolidatable
    (c,), _ = w.candidates(now=NOW + timedelta(seconds=5))
    assert c.consolidatable


def test_never_is_never_consolidatable() -> None:
    w = World(pools=[pool_json(after="Never")])
    w.node("c5.large", 0, idle=10**6)
    (c,), _ = w.candidates()
    assert not c.consolidatable


def test_eviction_cost_follows_deletion_cost_and_priority_clamped() -> None:
    def pod(annotations: dict[str, str], priority: int | None = None) -> dict[str, object]:
        spec: dict[str, object] = {} if priority is None else {"priority": priority}
        return {"metadata": {"annotations": annotations}, "spec": spec}

    assert eviction_cost(pod({})) == 1.0
    assert eviction_cost(pod({"controller.kubernetes.io/pod-deletion-cost": str(2**27)})) == 2.0
    assert eviction_cost(pod({}, priority=2**25)) == 2.0
    assert eviction_cost(pod({}, priority=2**31 - 1)) == 10.0
    assert eviction_cost(pod({"controller.kubernetes.io/pod-deletion-cost": "x"})) == 1.0
