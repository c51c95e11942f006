"""The relaxation ladder: preferences honoured when possible, dropped in order when not."""

from __future__ import annotations

from provisioner.labels import HOSTNAME, ZONE

from ..builders import ON_DEMAND, nodepool, pod, pods, types_in
from .support import ZONES_ABC, run, zone_of


def test_preferred_node_affinity_is_honoured_when_possible() -> None:
    pool = nodepool(requirements=[ON_DEMAND, ZONES_ABC, types_in("m5.large")])
    prefer_b = {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 10,
                    "preference": {
                        "matchExpressions": [
                            {"key": ZONE, "operator": "In", "values": ["us-east-1b"]}
                        ]
                    },
                }
            ]
        }
    }
    [claim] = run([pod("p", spec={"affinity": prefer_b})], [pool]).new_claims
    assert zone_of(claim) == "us-east-1b"


def test_preferred_affinity_is_relaxed_when_impossible() -> None:
    pool = nodepool(requirements=[ON_DEMAND, ZONES_ABC, types_in("m5.large")])
    prefer_z = {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 10,
                    "preference": {
                        "matchExpressions": [
                            {"key": ZONE, "operator": "In", "values": ["us-west-2a"]}
                        ]
                    },
                }
            ]
        }
    }
    prefer_pod = {
        "podAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 5,
                    "podAffinityTerm": {
                        "topologyKey": HOSTNAME,
                        "labelSelector": {"matchLabels": {"app": "nowhere"}},
                    },
                }
            ]
        }
    }
    result = run(
        [pod("a", spec={"affinity": prefer_z}), pod("b", spec={"affinity": prefer_pod})], [pool]
    )
    assert result.unschedulable == ()
    assert sorted(p.name for c in result.new_claims for p in c.pods) == ["a", "b"]
    for claim in result.new_claims:
        assert not claim.requirements[ZONE].has("us-west-2a")


def test_required_node_affinity_terms_are_alternatives() -> None:
    pool = nodepool(requirements=[ON_DEMAND, ZONES_ABC, types_in("m5.large")])
    terms = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": ZONE, "operator": "In", "values": ["eu-west-1a"]}
                        ]
                    },
                    {
                        "matchExpressions": [
                            {"key": ZONE, "operator": "In", "values": ["us-east-1c"]}
                        ]
                    },
                ]
            }
        }
    }
    [claim] = run([pod("p", spec={"affinity": terms})], [pool]).new_claims
    assert zone_of(claim) == "us-east-1c"


def test_schedule_anyway_spread_is_relaxed() -> None:
    soft = [
        {
            "maxSkew": 1,
            "topologyKey": HOSTNAME,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app": "w"}},
        }
    ]
    hard_limit = nodepool(requirements=[ON_DEMAND, types_in("m5.large")], limits={"cpu": "2"})
    result = run(
        pods("w", 2, "100m", "64Mi", labels={"app": "w"}, spec={"topologySpreadConstraints": soft}),
        [hard_limit],
    )
    # Only one node fits the limit, so the soft hostname spread gives way.
    assert result.unschedulable == ()
    assert [len(c.pods) for c in result.new_claims] == [2]


def test_prefer_no_schedule_taint_is_tolerated_as_a_last_resort() -> None:
    pool = nodepool(
        requirements=[ON_DEMAND, types_in("m5.large")],
        taints=[{"key": "spare", "effect": "PreferNoSchedule"}],
    )
    result = run([pod("p")], [pool])
    assert len(result.new_claims) == 1
