"""``simulate(one_claim=True)``: what a consolidation asks when it can launch one node only.

Free pods that the pass spreads over several claims of one pool (cheaper so) become one claim
on the cheapest type holding them all; pods with constraints of their own, and pools where no
single type holds them, keep the pass's answer.
"""

from __future__ import annotations

import pytest

from provisioner.labels import HOSTNAME
from provisioner.scheduling import simulate

from ..brute_force import CATALOG, GRAVITON, holds, priced_types
from ..builders import ON_DEMAND, nodepool, pod, types_in

SEED_TYPES = ("c5.large", "m5.large", "m5.xlarge")


def test_free_pods_split_over_several_claims_become_one_on_the_cheapest_type_holding_all() -> None:
    # Two c5.large ($0.17/h) hold one 1-cpu pod each, cheaper than one m5.xlarge ($0.192/h).
    batch = [pod(f"p{i}", "1", "64Mi") for i in range(2)]
    pool = nodepool(requirements=[ON_DEMAND, types_in(*SEED_TYPES)])
    split = simulate(batch, nodepools=[pool], catalog=CATALOG)
    assert [c.instance_types[0].name for c in split.new_claims] == ["c5.large"] * 2
    one = simulate(batch, nodepools=[pool], catalog=CATALOG, one_claim=True)
    assert one.unschedulable == ()
    assert len(one.new_claims) == 1
    (claim,) = one.new_claims
    assert sorted(p.name for p in claim.pods) == sorted(p.name for p in batch)
    cheapest = next(t for _, t in priced_types(SEED_TYPES) if holds(t, batch))
    assert claim.instance_types[0].name == cheapest.name == "m5.xlarge"
    assert all(holds(t, batch) for t in claim.instance_types)
    assert claim.price == pytest.approx(0.192)


def test_pods_with_constraints_of_their_own_are_not_merged() -> None:
    anti = {
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": HOSTNAME, "labelSelector": {"matchLabels": {"app": "db"}}}
                ]
            }
        }
    }
    batch = [pod(f"db-{i}", "250m", "512Mi", labels={"app": "db"}, spec=anti) for i in range(3)]
    pool = nodepool(requirements=[ON_DEMAND, types_in(*GRAVITON)])
    result = simulate(batch, nodepools=[pool], catalog=CATALOG, one_claim=True)
    assert len(result.new_claims) == 3  # one per host, as the anti-affinity demands


@pytest.mark.parametrize("count", [3, 40])
def test_no_single_type_holding_them_all_keeps_the_split(count: int) -> None:
    # c6g.large holds one 1-cpu pod; the pool has nothing bigger.
    batch = [pod(f"p{i}", "1", "1Gi") for i in range(count)]
    pool = nodepool(requirements=[ON_DEMAND, types_in("c6g.large")])
    result = simulate(batch, nodepools=[pool], catalog=CATALOG, one_claim=True)
    assert result.unschedulable == ()
    assert len(result.new_claims) == count
