"""Offerings and pools: which pool and types a pod may get, daemonset overhead, limits and
minValues, and the reasons given when none fits."""

from __future__ import annotations

from provisioner import (
    Resources,
)
from provisioner.labels import NODEPOOL
from provisioner.parsing import pod_from_template

from ..builders import ON_DEMAND, node, nodepool, pod, pods, types_in
from .support import names, run


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
