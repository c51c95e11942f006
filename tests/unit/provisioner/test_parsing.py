"""The Kubernetes JSON boundary: pods (request rules, constraints), NodePools, Nodes."""

from __future__ import annotations

from typing import Any

import pytest

from provisioner import (
    HostPort,
    InvalidFieldError,
    QuantityError,
    Resources,
    Taint,
    Toleration,
    pod_from_k8s,
    pod_from_template,
)
from provisioner.labels import NODEPOOL, ZONE
from provisioner.requirements import Requirement

from .builders import nodepool, pod_dict

GI = 2**30


def container(name: str, cpu: str, memory: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "resources": {"requests": {"cpu": cpu, "memory": memory}}, **extra}


def requests_of(spec: dict[str, Any]) -> Resources:
    return pod_from_k8s({"metadata": {"name": "p"}, "spec": spec}).requests


def test_requests_sum_containers() -> None:
    spec = {"containers": [container("a", "250m", "1Gi"), container("b", "750m", "1Gi")]}
    assert requests_of(spec) == Resources(cpu=1000, memory=2 * GI)


def test_largest_init_container_wins_when_bigger() -> None:
    spec = {
        "initContainers": [container("i1", "2", "512Mi"), container("i2", "100m", "3Gi")],
        "containers": [container("a", "500m", "1Gi")],
    }
    # Per resource: cpu max(500m, 2) = 2; memory max(1Gi, 3Gi) = 3Gi.
    assert requests_of(spec) == Resources(cpu=2000, memory=3 * GI)


def test_sidecars_run_alongside_containers_and_later_init_containers() -> None:
    spec = {
        "initContainers": [
            container("sidecar", "200m", "256Mi", restartPolicy="Always"),
            container("migrate", "1", "1Gi"),
        ],
        "containers": [container("a", "500m", "1Gi")],
    }
    # Running: 500m + 200m sidecar = 700m. Init phase: migrate 1 + sidecar 200m = 1200m.
    # Memory: running 1Gi + 256Mi; init 1Gi + 256Mi: equal.
    assert requests_of(spec) == Resources(cpu=1200, memory=GI + 256 * 2**20)


def test_overhead_is_added() -> None:
    spec = {
        "containers": [container("a", "500m", "1Gi")],
        "overhead": {"cpu": "250m", "memory": "120Mi"},
    }
    assert requests_of(spec) == Resources(cpu=750, memory=GI + 120 * 2**20)


def test_limits_stand_in_for_missing_requests() -> None:
    spec = {
        "containers": [{"name": "a", "resources": {"limits": {"cpu": "1", "nvidia.com/gpu": "2"}}}]
    }
    assert requests_of(spec) == Resources(cpu=1000, extended=(("nvidia.com/gpu", 2),))


def test_bad_request_names_the_container_path() -> None:
    spec = {"containers": [container("a", "1", "1Gi"), container("b", "one", "1Gi")]}
    with pytest.raises(QuantityError) as info:
        requests_of(spec)
    assert info.value.field == "spec.containers[1].resources.requests.cpu"


def test_node_selector_is_merged_into_every_required_term() -> None:
    spec = {
        "nodeSelector": {"team": "a"},
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": ZONE, "operator": "In", "values": ["z1"]}]},
                        {"matchExpressions": [{"key": ZONE, "operator": "In", "values": ["z2"]}]},
                    ]
                },
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 1,
                        "preference": {"matchExpressions": [{"key": "x", "operator": "Exists"}]},
                    },
                    {
                        "weight": 50,
                        "preference": {"matchExpressions": [{"key": "y", "operator": "Exists"}]},
                    },
                ],
            }
        },
    }
    p = pod_from_k8s(pod_dict("p", spec=spec))
    assert [sorted(t.single_values().items()) for t in p.required_terms] == [
        [("team", "a"), (ZONE, "z1")],
        [("team", "a"), (ZONE, "z2")],
    ]
    assert [w for w, _ in p.preferred_terms] == [50, 1]  # heaviest first


def test_pod_constraints_are_read() -> None:
    selector = {"matchLabels": {"app": "web"}}
    spec = {
        "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "kubernetes.io/hostname", "labelSelector": selector}
                ],
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 80,
                        "podAffinityTerm": {"topologyKey": ZONE, "labelSelector": selector},
                    },
                    {
                        "weight": 20,
                        "podAffinityTerm": {"topologyKey": ZONE, "labelSelector": selector},
                    },
                ],
            }
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 2,
                "topologyKey": ZONE,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": selector,
            }
        ],
        "containers": [
            {"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 90}]}
        ],
    }
    p = pod_from_k8s(pod_dict("p", labels={"app": "web"}, spec=spec))
    assert p.tolerations == (Toleration(key="gpu", operator="Exists", effect="NoSchedule"),)
    assert p.tolerations[0].tolerates(Taint("gpu", "true"))
    assert not p.tolerations[0].tolerates(Taint("gpu", "true", "NoExecute"))
    assert len(p.anti_affinity) == 1
    assert p.anti_affinity[0].matches("default", {"app": "web"})
    assert not p.anti_affinity[0].matches("other", {"app": "web"})
    assert [t.weight for t in p.preferred_anti_affinity] == [20, 80]  # given up lightest first
    assert p.spread[0].max_skew == 2
    assert not p.spread[0].required
    assert p.host_ports == (HostPort(8080),)
    assert p.created > 0


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (
            {"topologySpreadConstraints": [{"maxSkew": 0, "topologyKey": ZONE}]},
            "spec.topologySpreadConstraints[0].maxSkew",
        ),
        (
            {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "rack"}]},
            "spec.topologySpreadConstraints[0].topologyKey",
        ),
        ({"tolerations": [{"key": "a", "operator": "Like"}]}, "spec.tolerations[0].operator"),
        ({"tolerations": "all"}, "spec.tolerations"),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "a", "operator": "Gt", "values": ["x"]}
                                    ]
                                }
                            ]
                        }
                    }
                }
            },
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
            ".nodeSelectorTerms[0].matchExpressions[0].values",
        ),
    ],
)
def test_invalid_pod_fields_are_named(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidFieldError) as info:
        pod_from_k8s(pod_dict("p", spec=spec))
    assert info.value.field == field


def test_nodepool_view() -> None:
    pool = nodepool(
        "gpu",
        weight=10,
        labels={"team": "ml"},
        requirements=[
            {
                "key": "karpenter.sh/capacity-type",
                "operator": "In",
                "values": ["spot"],
                "minValues": 1,
            }
        ],
        taints=[{"key": "gpu", "value": "true", "effect": "NoSchedule"}],
        startup_taints=[{"key": "init", "effect": "NoExecute"}],
        limits={"cpu": "100", "memory": "1000Gi"},
        kubelet={
            "maxPods": 20,
            "systemReserved": {"cpu": "100m"},
            "evictionHard": {"memory.available": "5%"},
        },
    )
    assert pool.weight == 10
    assert pool.taints == (Taint("gpu", "true"),)
    assert pool.startup_taints == (Taint("init", "", "NoExecute"),)
    assert pool.limits == Resources(cpu=100_000, memory=1000 * GI)
    assert pool.limit_names == {"cpu", "memory"}
    assert pool.kubelet.max_pods == 20
    assert pool.kubelet.system_reserved == Resources(cpu=100)
    reqs = pool.template_requirements()
    assert reqs.single_values() == {
        "karpenter.sh/capacity-type": "spot",
        "team": "ml",
        NODEPOOL: "gpu",
    }
    assert reqs["karpenter.sh/capacity-type"] == Requirement.any_of(
        "karpenter.sh/capacity-type", ["spot"]
    ).intersect(Requirement.new("karpenter.sh/capacity-type", "In", ["spot"], min_values=1))


def test_nodepool_bad_weight_and_taint_effect() -> None:
    with pytest.raises(InvalidFieldError) as info:
        nodepool(weight=101)
    assert info.value.field == "spec.weight"
    with pytest.raises(InvalidFieldError) as info:
        nodepool(taints=[{"key": "a", "effect": "Never"}])
    assert info.value.field == "spec.template.spec.taints[0].effect"


def test_daemonset_template() -> None:
    ds = {
        "metadata": {"name": "logs", "namespace": "kube-system"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "logs"}},
                "spec": {"containers": [container("c", "100m", "128Mi")]},
            }
        },
    }
    p = pod_from_template(ds)
    assert (p.name, p.namespace, dict(p.labels)) == ("logs", "kube-system", {"app": "logs"})
    assert p.requests == Resources(cpu=100, memory=128 * 2**20)
