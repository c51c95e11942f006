"""Topology: hostname and zone spread, affinity and anti-affinity (symmetric too)."""

from __future__ import annotations

from collections import Counter

from provisioner.labels import HOSTNAME, NODEPOOL, ZONE

from ..builders import ON_DEMAND, node, nodepool, pod, pods, types_in
from .support import ZONES_ABC, bound, names, run, zone_of


def test_hostname_anti_affinity_spreads_pods_to_distinct_claims() -> None:
    pool = nodepool(requirements=[ON_DEMAND, types_in("m5.2xlarge")])
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": HOSTNAME, "labelSelector": {"matchLabels": {"app": "db"}}}
            ]
        }
    }
    batch = pods("db", 3, "100m", "128Mi", labels={"app": "db"}, spec={"affinity": anti})
    batch += pods("web", 3, "100m", "128Mi", labels={"app": "web"})
    result = run(batch, [pool])
    assert len(result.new_claims) == 3
    for claim in result.new_claims:
        assert sum(p.labels["app"] == "db" for p in claim.pods) == 1
    assert result.unschedulable == ()


def test_anti_affinity_of_running_pods_is_symmetric() -> None:
    pool = nodepool(requirements=[ON_DEMAND, types_in("m5.2xlarge")])
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": HOSTNAME, "labelSelector": {"matchLabels": {"app": "web"}}}
            ]
        }
    }
    loner = bound("loner", "100m", labels={"app": "lonely"}, spec={"affinity": anti})
    existing = node("n1", cpu="8", memory="32Gi", bound=[loner])
    result = run([pod("web", "100m", "128Mi", labels={"app": "web"})], [pool], nodes=[existing])
    assert result.placed == ()
    assert len(result.new_claims) == 1


def test_zone_spread_max_skew_one_over_three_zones() -> None:
    pool = nodepool(requirements=[ON_DEMAND, ZONES_ABC, types_in("m5.large")])
    spread = [
        {
            "maxSkew": 1,
            "topologyKey": ZONE,
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "web"}},
        }
    ]
    batch = pods(
        "web", 7, "1", "1Gi", labels={"app": "web"}, spec={"topologySpreadConstraints": spread}
    )
    result = run(batch, [pool])
    per_zone = Counter(zone_of(c) for c in result.new_claims for _ in c.pods)
    assert sorted(per_zone.values()) == [2, 2, 3]
    assert set(per_zone) == {"us-east-1a", "us-east-1b", "us-east-1c"}


def test_zone_spread_counts_existing_pods() -> None:
    pool = nodepool(requirements=[ON_DEMAND, ZONES_ABC, types_in("m5.large")])
    spread = [{"maxSkew": 1, "topologyKey": ZONE, "labelSelector": {"matchLabels": {"app": "web"}}}]
    tainted = [{"key": "full", "effect": "NoSchedule"}]
    running = [
        node(
            f"n-{z}",
            labels={ZONE: f"us-east-1{z}"},
            taints=tainted,
            bound=[bound(f"w-{z}{i}", "100m", labels={"app": "web"}) for i in range(n)],
        )
        for z, n in (("a", 2), ("b", 1), ("c", 0))
    ]
    batch = pods(
        "web", 3, "1", "1Gi", labels={"app": "web"}, spec={"topologySpreadConstraints": spread}
    )
    result = run(batch, [pool], nodes=running)
    per_zone = Counter(zone_of(c) for c in result.new_claims for _ in c.pods)
    # Existing a=2, b=1, c=0: three more make it a=2, b=2, c=2 (c gets 2, b gets 1).
    assert per_zone == {"us-east-1c": 2, "us-east-1b": 1}


def test_zone_affinity_keeps_a_group_in_one_zone() -> None:
    pool = nodepool(requirements=[ON_DEMAND, ZONES_ABC, types_in("m5.large")])
    affinity = {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": ZONE, "labelSelector": {"matchLabels": {"app": "cache"}}}
            ]
        }
    }
    batch = pods("cache", 5, "1", "1Gi", labels={"app": "cache"}, spec={"affinity": affinity})
    result = run(batch, [pool])
    assert len(result.new_claims) == 5
    assert len({zone_of(c) for c in result.new_claims}) == 1


def test_hostname_affinity_follows_the_target_pod() -> None:
    pool = nodepool(requirements=[ON_DEMAND, types_in("m5.xlarge", "m5.2xlarge")])
    affinity = {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": HOSTNAME, "labelSelector": {"matchLabels": {"app": "db"}}}
            ]
        }
    }
    # The follower is queued first (bigger), fails, and is retried once the db pod is placed.
    follower = pod("sidecar", "3", "1Gi", spec={"affinity": affinity})
    result = run([pod("db", "500m", "1Gi", labels={"app": "db"}), follower], [pool])
    assert result.unschedulable == ()
    [claim] = result.new_claims
    assert names(claim) == ["db", "sidecar"]


def test_at_equal_price_unconstrained_claims_spread_over_the_pools_zones() -> None:
    """Nothing ties these pods to a zone and on-demand costs the same in each: the claims go
    to the zones where the pool has the fewest nodes (here one is already in us-east-1a)."""
    pool = nodepool(requirements=[ON_DEMAND, types_in("c5.xlarge"), ZONES_ABC])
    existing = node("n1", cpu="1", memory="1Gi", labels={NODEPOOL: "default", ZONE: "us-east-1a"})
    result = run(pods("p", 3, "3", "1Gi"), [pool], nodes=[existing])
    assert sorted(zone_of(c) for c in result.new_claims) == [
        "us-east-1a",
        "us-east-1b",
        "us-east-1c",
    ]
    result = run(pods("p", 2, "3", "1Gi"), [pool], nodes=[existing])
    assert sorted(zone_of(c) for c in result.new_claims) == ["us-east-1b", "us-east-1c"]
    assert all(c.labels[ZONE] == zone_of(c) for c in result.new_claims)
