"""The scheduler loop: cheapest packing, pool weight order, what happens with no pool, and the
question disruption asks (the cluster without some nodes)."""

from __future__ import annotations

import pytest

from provisioner import Resources, pod_from_k8s
from provisioner.labels import NODEPOOL

from ..builders import ON_DEMAND, node, nodepool, pod, pods, types_in
from .support import bound, run


def test_five_pods_get_the_cheapest_packing() -> None:
    # On-demand: c5.large $0.085 (1930m allocatable -> 1 pod), m5.large $0.096 (1930m -> 1 pod),
    # m5.xlarge $0.192 (3920m -> 3 pods). Five 1-CPU pods: 5 x c5.large = $0.425,
    # 2 x m5.xlarge = $0.384, m5.xlarge + 2 x c5.large = $0.362 (the optimum).
    pool = nodepool(requirements=[ON_DEMAND, types_in("c5.large", "m5.large", "m5.xlarge")])
    result = run(pods("p", 5, "1", "1Gi"), [pool])
    assert result.unschedulable == ()
    assert result.price == pytest.approx(0.362)
    assert sorted(c.instance_types[0].name for c in result.new_claims) == [
        "c5.large",
        "c5.large",
        "m5.xlarge",
    ]
    big = next(c for c in result.new_claims if len(c.pods) == 3)
    assert [t.name for t in big.instance_types] == ["m5.xlarge"]
    small = next(c for c in result.new_claims if len(c.pods) == 1)
    # Every compatible type that fits, cheapest first: the provider's fallback order.
    assert [t.name for t in small.instance_types] == ["c5.large", "m5.large", "m5.xlarge"]
    assert small.requests == Resources(cpu=1000, memory=2**30, pods=1)
    assert small.labels[NODEPOOL] == "default"
    assert small.labels["karpenter.sh/capacity-type"] == "on-demand"


def test_weight_order_is_respected() -> None:
    cheap = nodepool("cheap", weight=1, requirements=[ON_DEMAND, types_in("c5.large")])
    preferred = nodepool("preferred", weight=50, requirements=[ON_DEMAND, types_in("m5.large")])
    result = run(pods("p", 2, "1", "1Gi"), [cheap, preferred])
    assert {c.nodepool for c in result.new_claims} == {"preferred"}


def test_lower_weight_pool_is_used_when_the_heavier_cannot_fit() -> None:
    cheap = nodepool("cheap", weight=1, requirements=[ON_DEMAND, types_in("c5.xlarge")])
    preferred = nodepool("preferred", weight=50, requirements=[ON_DEMAND, types_in("m5.large")])
    result = run([pod("big", "3", "1Gi")], [cheap, preferred])
    assert [c.nodepool for c in result.new_claims] == ["cheap"]


def test_no_pool_and_no_room() -> None:
    result = run([pod("p")], [])
    assert [(p.name, r) for p, r in result.unschedulable] == [
        ("p", "no NodePool, and no existing node has room")
    ]


def test_max_pods_is_respected() -> None:
    pool = nodepool(requirements=[ON_DEMAND, types_in("m5.xlarge")], kubelet={"maxPods": 3})
    result = run(pods("p", 7, "10m", "16Mi"), [pool])
    assert sorted(len(c.pods) for c in result.new_claims) == [1, 3, 3]


def test_without_a_node_its_pods_go_to_the_others_then_to_new_claims() -> None:
    # Disruption's question, asked as the package docstring says: the cluster without the
    # candidate (a reduced node list) and the candidate's pods as the pods to place.
    pool = nodepool(requirements=[ON_DEMAND, types_in("c5.large")])
    displaced = [bound(f"d-{i}", "1") for i in range(3)]
    keeper = node("n2", cpu="4", labels={NODEPOOL: "default"}, bound=[bound("k", "1500m")])
    result = run([pod_from_k8s(d) for d in displaced], [pool], nodes=[keeper])
    # n2 has 2.5 CPUs left: two of the three move there, the third needs a new c5.large.
    assert sorted(n for _, n in result.placed) == ["n2", "n2"]
    [claim] = result.new_claims
    assert len(claim.pods) == 1
    assert claim.instance_types[0].name == "c5.large"
    assert result.unschedulable == ()
