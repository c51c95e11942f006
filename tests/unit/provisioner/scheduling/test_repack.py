"""The repack pass: exact on small batches (checked by brute force), constraints kept."""

from __future__ import annotations

import pytest

from provisioner.labels import HOSTNAME
from provisioner.scheduling import simulate

from ..brute_force import CATALOG, GRAVITON, brute_force, holds, priced_types
from ..builders import ON_DEMAND, nodepool, pod, types_in

MIB = 2**20

CASES = [
    # (cpu millicores, memory MiB) per pod; the pod-by-pod pass alone made 5 claims ($0.373/h)
    # for the first and 4 ($0.426/h) for the second.
    [(250, 1024), (500, 512), (250, 4096), (250, 2048), (250, 4096), (750, 256), (500, 512),
     (1000, 1024)],
    [(500, 512), (1000, 1024), (250, 3072), (750, 1024), (1000, 256), (250, 256), (500, 3072),
     (500, 256)],
    [(1000, 3072), (500, 3072), (250, 2048), (1000, 4096), (500, 4096), (250, 2048), (250, 256),
     (250, 4096)],
]  # fmt: skip


@pytest.mark.parametrize("sizes", CASES)
def test_small_mixed_batch_gets_the_brute_force_optimum(sizes: list[tuple[int, int]]) -> None:
    batch = [pod(f"p{i}", f"{c}m", f"{m}Mi") for i, (c, m) in enumerate(sizes)]
    pool = nodepool(requirements=[ON_DEMAND, types_in(*GRAVITON)])
    result = simulate(batch, nodepools=[pool], catalog=CATALOG)
    assert result.unschedulable == ()
    assert sorted(p.name for c in result.new_claims for p in c.pods) == sorted(
        p.name for p in batch
    )
    assert result.price == pytest.approx(brute_force(batch, GRAVITON))
    priced = priced_types(GRAVITON)
    for claim in result.new_claims:
        # Still every compatible type that holds the claim's pods, cheapest first.
        assert [t.name for t in claim.instance_types] == [
            t.name for _, t in priced if holds(t, claim.pods)
        ]
        assert claim.price == pytest.approx(priced[[t for _, t in priced].index(
            claim.instance_types[0])][0])  # fmt: skip


def test_constrained_pods_keep_their_constraints_next_to_free_ones() -> None:
    anti = {
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": HOSTNAME, "labelSelector": {"matchLabels": {"app": "db"}}}
                ]
            }
        }
    }
    spread = [pod(f"db-{i}", "250m", "512Mi", labels={"app": "db"}, spec=anti) for i in range(4)]
    free = [pod(f"web-{i}", "250m", "512Mi") for i in range(12)]
    pool = nodepool(requirements=[ON_DEMAND, types_in(*GRAVITON)])
    result = simulate([*spread, *free], nodepools=[pool], catalog=CATALOG)
    assert result.unschedulable == ()
    hosts = [c.name for c in result.new_claims for p in c.pods if p.name.startswith("db-")]
    assert len(hosts) == len(set(hosts)) == 4
    assert sum(len(c.pods) for c in result.new_claims) == 16
    names = [c.name for c in result.new_claims]
    assert len(names) == len(set(names))


def test_limits_pools_never_launch_past_their_limits() -> None:
    pool = nodepool(requirements=[ON_DEMAND, types_in(*GRAVITON)], limits={"cpu": "8"})
    batch = [pod(f"p{i}", f"{c}m", f"{m}Mi") for i, (c, m) in enumerate(CASES[0])]
    result = simulate(batch, nodepools=[pool], catalog=CATALOG)
    # The pass reserves each claim's target capacity; what it launches is never bigger.
    assert sum(c.instance_types[0].capacity.cpu for c in result.new_claims) <= 8000


SEED_TYPES = ("c5.large", "m5.large", "m5.xlarge")


def test_a_pool_with_limits_that_do_not_bind_packs_as_cheaply_as_one_without() -> None:
    # The seed: 12 x 1 cpu on c5.large/m5.large/m5.xlarge. 4 x m5.xlarge ($0.768/h) is the
    # optimum; the pod-by-pod pass alone gives 3 x m5.xlarge + 3 x c5.large ($0.831/h).
    batch = [pod(f"p{i}", "1", "64Mi") for i in range(12)]
    free = nodepool(requirements=[ON_DEMAND, types_in(*SEED_TYPES)])
    limited = nodepool(requirements=[ON_DEMAND, types_in(*SEED_TYPES)], limits={"cpu": "100"})
    for pool in (free, limited):
        result = simulate(batch, nodepools=[pool], catalog=CATALOG)
        assert result.unschedulable == ()
        assert round(result.price, 3) == 0.768
        assert sorted(c.instance_types[0].name for c in result.new_claims) == ["m5.xlarge"] * 4


def test_a_repack_that_would_break_the_limits_is_not_taken() -> None:
    # 16 vCPU of limit: 4 x m5.xlarge reserve exactly 16, so the repack is taken at the edge;
    # at 15 it is not, and the pass keeps a packing inside the limit.
    batch = [pod(f"p{i}", "1", "64Mi") for i in range(12)]
    edge = nodepool(requirements=[ON_DEMAND, types_in(*SEED_TYPES)], limits={"cpu": "16"})
    assert round(simulate(batch, nodepools=[edge], catalog=CATALOG).price, 3) == 0.768
    tight = nodepool(requirements=[ON_DEMAND, types_in(*SEED_TYPES)], limits={"cpu": "15"})
    result = simulate(batch, nodepools=[tight], catalog=CATALOG)
    assert sum(c.instance_types[0].capacity.cpu for c in result.new_claims) <= 15000


def test_pods_selecting_a_label_of_the_pool_template_are_repacked_too() -> None:
    # The e2e seed's pods select the tenant label every node of the pool carries: that narrows
    # nothing, so they pack as cheaply as pods with no selector (the pod-by-pod pass alone gave
    # $0.831/h); a selector the template does not settle keeps the pod-by-pod packing.
    spec = {"nodeSelector": {"tenant": "a"}}
    batch = [pod(f"p{i}", "1", "64Mi", spec=spec) for i in range(12)]
    pool = nodepool(
        requirements=[ON_DEMAND, types_in(*SEED_TYPES)],
        labels={"tenant": "a"},
        limits={"cpu": "100"},
    )
    result = simulate(batch, nodepools=[pool], catalog=CATALOG)
    assert result.unschedulable == ()
    assert sorted(c.instance_types[0].name for c in result.new_claims) == ["m5.xlarge"] * 4


CMR = {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["c", "m", "r"]}
C5_M5_R5 = {
    "key": "karpenter.k8s.aws/instance-family",
    "operator": "In",
    "values": ["c5", "m5", "r5"],
}


@pytest.mark.parametrize("family", [CMR, C5_M5_R5], ids=["c-m-r", "c5-m5-r5"])
def test_at_equal_price_one_larger_node_beats_several_small_ones(family: dict[str, object]) -> None:
    """5 x 1 cpu: two c5.large and a c5.xlarge cost what one c5.2xlarge costs; one node is one
    daemonset overhead and one node to drain, so the tie goes to it (as Karpenter picks)."""
    pool = nodepool(requirements=[ON_DEMAND, family])
    batch = [pod(f"p-{i}", "1", "1Gi") for i in range(5)]
    result = simulate(batch, nodepools=[pool], catalog=CATALOG)
    assert len(result.new_claims) == 1
    (claim,) = result.new_claims
    assert len(claim.pods) == 5
    reqs = pool.template_requirements()
    allowed = [t.name for t in CATALOG.instance_types() if t.requirements.conflict(reqs) is None]
    assert claim.price == pytest.approx(brute_force(batch, allowed))


def test_a_merge_never_costs_more() -> None:
    """5 x 1 cpu on the seed pool: m5.xlarge + 2 x c5.large ($0.362) stays three nodes, as
    one node holding them all would cost more."""
    pool = nodepool(requirements=[ON_DEMAND, types_in("c5.large", "m5.large", "m5.xlarge")])
    result = simulate(
        [pod(f"p-{i}", "1", "1Gi") for i in range(5)], nodepools=[pool], catalog=CATALOG
    )
    assert result.price == pytest.approx(0.362)
    assert len(result.new_claims) == 3
