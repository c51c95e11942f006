"""The scheduling simulation: placements, NodeClaims, unschedulable pods and their reasons."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from provisioner import (
    Catalog,
    NodeClaimPlan,
    NodeView,
    Pod,
    Resources,
    SimulationResult,
    Taint,
    simulate,
)
from provisioner.labels import HOSTNAME, NODEPOOL, ZONE
from provisioner.parsing import pod_from_template

from .builders import ON_DEMAND, node, nodepool, pod, pod_dict, pods, types_in

CATALOG = Catalog.aws()
ZONES_ABC = {"key": ZONE, "operator": "In", "values": ["us-east-1a", "us-east-1b", "us-east-1c"]}


def run(pending: list[Pod], pools: Any, **kwargs: Any) -> SimulationResult:
    return simulate(pending, nodepools=pools, catalog=CATALOG, **kwargs)


def names(claim: NodeClaimPlan) -> list[str]:
    return sorted(p.name for p in claim.pods)


def zone_of(claim: NodeClaimPlan) -> str:
    return claim.requirements[ZONE].single_value() or "?"


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


def test_result_is_deterministic_whatever_the_input_order() -> None:
    pool = nodepool(requirements=[ON_DEMAND, types_in("c5.large", "m5.large", "m5.xlarge")])
    batch = pods("p", 7, "700m", "1Gi") + pods("q", 4, "300m", "3Gi")
    first = run(batch, [pool])
    second = run(list(reversed(batch)), [pool])
    assert [(c.name, names(c)) for c in first.new_claims] == [
        (c.name, names(c)) for c in second.new_claims
    ]


def test_node_selector_and_toleration_steer_to_the_only_matching_pool() -> None:
    general = nodepool("general", requirements=[ON_DEMAND, types_in("m5.large")])
    ml = nodepool(
        "ml",
        requirements=[ON_DEMAND, types_in("c5.large")],
        labels={"team": "ml"},
        taints=[{"key": "dedicated", "value": "ml", "effect": "NoSchedule"}],
    )
    toleration = {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}
    steered = pod("ml-pod", spec={"nodeSelector": {"team": "ml"}, "tolerations": [toleration]})
    plain = pod("plain")
    result = run([steered, plain], [general, ml])
    where = {c.pods[0].name: (c.nodepool, c.instance_types[0].name) for c in result.new_claims}
    assert where == {"ml-pod": ("ml", "c5.large"), "plain": ("general", "m5.large")}
    ml_claim = next(c for c in result.new_claims if c.nodepool == "ml")
    assert [str(t) for t in ml_claim.taints] == ["dedicated=ml:NoSchedule"]
    assert ml_claim.labels["team"] == "ml"


def test_missing_toleration_is_the_reason() -> None:
    ml = nodepool(
        "ml",
        labels={"team": "ml"},
        taints=[{"key": "dedicated", "value": "ml", "effect": "NoSchedule"}],
    )
    result = run([pod("p", spec={"nodeSelector": {"team": "ml"}})], [ml])
    assert result.new_claims == ()
    [(unplaced, reason)] = result.unschedulable
    assert unplaced.name == "p"
    assert reason == "nodepool 'ml': taint dedicated=ml:NoSchedule not tolerated"


def test_a_pod_no_pool_fits_names_the_constraint() -> None:
    pool = nodepool(requirements=[ON_DEMAND])
    arch = pod("arm", spec={"nodeSelector": {"kubernetes.io/arch": "s390x"}})
    huge = pod("huge", cpu="1000")
    custom = pod("custom", spec={"nodeSelector": {"team": "x"}})
    result = run([arch, huge, custom], [pool])
    reasons = {p.name: r for p, r in result.unschedulable}
    assert reasons == {
        "arm": "nodepool 'default': no compatible instance type with an available offering",
        "huge": "nodepool 'default': no instance type has room for requests "
        "cpu=1000,memory=1Gi,pods=1 plus daemonsets",
        "custom": "nodepool 'default': incompatible requirement team: In [x] but the label is "
        "not defined here",
    }


def test_pool_requirement_conflict_names_the_key() -> None:
    pool = nodepool(requirements=[ON_DEMAND])
    spot = pod("spot", spec={"nodeSelector": {"karpenter.sh/capacity-type": "spot"}})
    [(_, reason)] = run([spot], [pool]).unschedulable
    assert reason == (
        "nodepool 'default': incompatible requirement karpenter.sh/capacity-type: "
        "In [spot] does not intersect In [on-demand]"
    )


def test_cpu_limit_is_never_exceeded() -> None:
    pool = nodepool(
        requirements=[ON_DEMAND, types_in("c5.large", "c5.xlarge", "c5.2xlarge")],
        limits={"cpu": "8"},
    )
    result = run(pods("p", 20, "1", "1Gi"), [pool])
    # Limits count each claim at its largest option (what the provider might launch).
    worst = sum(max(t.capacity.cpu for t in c.instance_types) for c in result.new_claims)
    assert worst <= 8000
    placed = sum(len(c.pods) for c in result.new_claims)
    assert placed == 7  # c5.2xlarge: 8 vCPU, 7910m allocatable
    assert len(result.unschedulable) == 13
    assert all("limits (cpu) would be exceeded" in r for _, r in result.unschedulable)


def test_limits_count_existing_nodes_of_the_pool() -> None:
    pool = nodepool(requirements=[ON_DEMAND, types_in("c5.large")], limits={"cpu": "4"})
    existing = node(
        "n1",
        cpu="2",
        labels={NODEPOOL: "default"},
        taints=[{"key": "full", "effect": "NoSchedule"}],
    )
    result = run(pods("p", 3, "1", "1Gi"), [pool], nodes=[existing])
    assert len(result.new_claims) == 1  # 2 of the 4 CPUs are taken by n1
    assert len(result.unschedulable) == 2


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
    busy = node("n1", cpu="2", memory="4Gi", bound=[_bound("b", "1500m")])
    result = run(pods("p", 2, "1", "1Gi"), [pool], nodes=[busy])
    assert result.placed == ()
    assert len(result.new_claims) == 2


def _bound(name: str, cpu: str, **kwargs: Any) -> dict[str, Any]:
    return pod_dict(name, cpu, "512Mi", **kwargs)


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
    loner = _bound("loner", "100m", labels={"app": "lonely"}, spec={"affinity": anti})
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
            bound=[_bound(f"w-{z}{i}", "100m", labels={"app": "web"}) for i in range(n)],
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


def test_host_port_conflict_forces_a_second_node() -> None:
    pool = nodepool(requirements=[ON_DEMAND, types_in("m5.2xlarge")])
    port = {
        "containers": [
            {
                "name": "a",
                "ports": [{"containerPort": 80, "hostPort": 8080}],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
            }
        ]
    }
    other = {
        "containers": [
            {
                "name": "a",
                "ports": [{"containerPort": 80, "hostPort": 9090}],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
            }
        ]
    }
    result = run([pod("a", spec=port), pod("b", spec=port), pod("c", spec=other)], [pool])
    assert sorted(names(c) for c in result.new_claims) == [["a", "c"], ["b"]]


def test_daemonset_overhead_reduces_room() -> None:
    pool = nodepool(requirements=[ON_DEMAND, types_in("m5.large", "m5.xlarge")])
    alone = run([pod("p", "1400m", "1Gi")], [pool])
    assert [t.name for t in alone.new_claims[0].instance_types] == ["m5.large", "m5.xlarge"]
    ds = pod_from_template(
        {
            "metadata": {"name": "agent", "namespace": "kube-system"},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "c",
                                "resources": {"requests": {"cpu": "600m", "memory": "200Mi"}},
                            }
                        ]
                    }
                }
            },
        }
    )
    # 1400m + 600m = 2000m > m5.large's 1930m allocatable.
    with_ds = run([pod("p", "1400m", "1Gi")], [pool], daemonsets=[ds])
    [claim] = with_ds.new_claims
    assert [t.name for t in claim.instance_types] == ["m5.xlarge"]
    assert claim.requests == Resources(cpu=2000, memory=2**30 + 200 * 2**20, pods=2)


def test_daemonset_that_does_not_tolerate_the_pool_taint_adds_nothing() -> None:
    pool = nodepool(
        requirements=[ON_DEMAND, types_in("m5.large", "m5.xlarge")],
        taints=[{"key": "gpu", "effect": "NoSchedule"}],
    )
    ds = pod_from_template(
        {
            "metadata": {"name": "agent"},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [{"name": "c", "resources": {"requests": {"cpu": "600m"}}}]
                    }
                }
            },
        }
    )
    tolerant = pod(
        "p", "1400m", "1Gi", spec={"tolerations": [{"key": "gpu", "operator": "Exists"}]}
    )
    [claim] = run([tolerant], [pool], daemonsets=[ds]).new_claims
    assert claim.instance_types[0].name == "m5.large"


def test_max_pods_is_respected() -> None:
    pool = nodepool(requirements=[ON_DEMAND, types_in("m5.xlarge")], kubelet={"maxPods": 3})
    result = run(pods("p", 7, "10m", "16Mi"), [pool])
    assert sorted(len(c.pods) for c in result.new_claims) == [1, 3, 3]


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


def test_startup_taints_need_not_be_tolerated() -> None:
    pool = nodepool(
        requirements=[ON_DEMAND, types_in("m5.large")],
        startup_taints=[{"key": "node.cilium.io/agent-not-ready", "effect": "NoExecute"}],
    )
    [claim] = run([pod("p")], [pool]).new_claims
    assert [str(t) for t in claim.startup_taints] == ["node.cilium.io/agent-not-ready:NoExecute"]


def test_prefer_no_schedule_taint_is_tolerated_as_a_last_resort() -> None:
    pool = nodepool(
        requirements=[ON_DEMAND, types_in("m5.large")],
        taints=[{"key": "spare", "effect": "PreferNoSchedule"}],
    )
    result = run([pod("p")], [pool])
    assert len(result.new_claims) == 1


def test_no_pool_and_no_room() -> None:
    result = run([pod("p")], [])
    assert [(p.name, r) for p, r in result.unschedulable] == [
        ("p", "no NodePool, and no existing node has room")
    ]


def test_min_values_keeps_enough_instance_types() -> None:
    flexible = nodepool(
        requirements=[
            ON_DEMAND,
            {
                "key": "node.kubernetes.io/instance-type",
                "operator": "In",
                "values": ["m5.large", "m5.xlarge", "m5.2xlarge"],
                "minValues": 2,
            },
        ]
    )
    result = run([pod("p", "2500m", "1Gi"), pod("q", "5", "1Gi")], [flexible])
    # 2500m fits m5.xlarge and m5.2xlarge (2 types): ok. 5 CPUs fit only m5.2xlarge: refused.
    assert [names(c) for c in result.new_claims] == [["p"]]
    [(unplaced, reason)] = result.unschedulable
    assert unplaced.name == "q"
    assert "minValues 2 for node.kubernetes.io/instance-type" in reason


def test_node_count_limit() -> None:
    pool = nodepool(requirements=[ON_DEMAND, types_in("c5.large")], limits={"nodes": "2"})
    result = run(pods("p", 4, "1", "1Gi"), [pool])
    assert len(result.new_claims) == 2
    assert len(result.unschedulable) == 2
    assert all("limits (nodes) would be exceeded" in r for _, r in result.unschedulable)


def test_a_pod_selects_a_pool_by_the_label_its_nodes_carry() -> None:
    """Nodes carry `updraft.io/nodepool`; selecting Karpenter's key would match no node the
    provisioner makes, so it must not count as fitting."""
    pool = nodepool(requirements=[ON_DEMAND])
    ours = pod("ours", spec={"nodeSelector": {"updraft.io/nodepool": "default"}})
    theirs = pod("theirs", spec={"nodeSelector": {"karpenter.sh/nodepool": "default"}})
    result = run([ours, theirs], [pool])
    assert [p.name for c in result.new_claims for p in c.pods] == ["ours"]
    assert [p.name for p, _ in result.unschedulable] == ["theirs"]
