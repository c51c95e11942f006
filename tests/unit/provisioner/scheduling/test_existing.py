"""Existing nodes and in-flight NodeClaims: filled first, never overfilled, startup taints."""

from __future__ import annotations

from collections import Counter

from provisioner import (
    NodeView,
    Resources,
    Taint,
)
from provisioner.labels import NODEPOOL, ZONE

from ..builders import ON_DEMAND, node, nodepool, pod, pods, types_in
from .support import bound, run


def test_existing_node_with_room_is_filled_first() -> None:
    pool = nodepool(requirements=[ON_DEMAND, types_in("c5.large")])
    existing = node("n1", cpu="4", memory="8Gi", bound=[])
    result = run(pods("p", 3, "1", "1Gi"), [pool], nodes=[existing])
    assert result.new_claims == ()
    assert sorted(n for _, n in result.placed) == ["n1", "n1", "n1"]


def test_in_flight_claim_absorbs_a_burst() -> None:
    pool = nodepool(requirements=[ON_DEMAND, types_in("c5.large")])
    in_flight = NodeView(
        name="default-abc",
        labels={NODEPOOL: "default", ZONE: "us-east-1a"},
        allocatable=Resources(cpu=3920, memory=14 * 2**30, pods=58),
        capacity=Resources(cpu=4000, memory=16 * 2**30, pods=58),
        initialized=False,
        in_flight=True,
        taints=(Taint("karpenter.sh/unregistered", "", "NoExecute"),),
    )
    result = run(pods("p", 4, "900m", "1Gi"), [pool], nodes=[in_flight])
    assert result.new_claims == ()
    assert Counter(n for _, n in result.placed) == {"default-abc": 4}


def test_full_existing_node_is_not_overfilled() -> None:
    pool = nodepool(requirements=[ON_DEMAND, types_in("c5.large")])
    busy = node("n1", cpu="2", memory="4Gi", bound=[bound("b", "1500m")])
    result = run(pods("p", 2, "1", "1Gi"), [pool], nodes=[busy])
    assert result.placed == ()
    assert len(result.new_claims) == 2


def test_startup_taints_need_not_be_tolerated() -> None:
    pool = nodepool(
        requirements=[ON_DEMAND, types_in("m5.large")],
        startup_taints=[{"key": "node.cilium.io/agent-not-ready", "effect": "NoExecute"}],
    )
    [claim] = run([pod("p")], [pool]).new_claims
    assert [str(t) for t in claim.startup_taints] == ["node.cilium.io/agent-not-ready:NoExecute"]


def test_a_booting_node_not_ready_yet_takes_pods_an_initialized_one_does_not() -> None:
    """The node lifecycle controller taints a node not-ready until it is Ready; on a node of
    ours still booting that is no reason to launch another one."""
    pool = nodepool(requirements=[ON_DEMAND, types_in("c5.large")])
    not_ready = (Taint("node.kubernetes.io/not-ready", "", "NoSchedule"),)
    booting = NodeView(
        name="default-abc",
        labels={NODEPOOL: "default", ZONE: "us-east-1a"},
        allocatable=Resources(cpu=3920, memory=14 * 2**30, pods=58),
        capacity=Resources(cpu=4000, memory=16 * 2**30, pods=58),
        initialized=False,
        taints=not_ready,
    )
    result = run(pods("p", 3, "1", "1Gi"), [pool], nodes=[booting])
    assert result.new_claims == ()
    assert Counter(n for _, n in result.placed) == {"default-abc": 3}
    broken = NodeView(
        name="n1",
        labels={ZONE: "us-east-1a"},
        allocatable=booting.allocatable,
        capacity=booting.capacity,
        taints=not_ready,
    )
    result = run(pods("p", 3, "1", "1Gi"), [pool], nodes=[broken])
    assert result.placed == ()
