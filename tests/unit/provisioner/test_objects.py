"""The provisioner's Kubernetes boundary: NodePool validation, NodeClaims from plans and back,
in-flight claims filling before new ones, and which pods are provisionable."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner import Catalog, Requirement, Requirements
from provisioner.claims import NodeClaimView
from provisioner.errors import InvalidFieldError
from provisioner.labels import DISRUPTED_TAINT, INSTANCE_TYPE, NODEPOOL, ZONE
from provisioner.objects import (
    BATCH_ANNOTATION,
    FINALIZER,
    POOL_LABEL,
    claim_options,
    claim_requirements,
    claim_view,
    disrupted_taints,
    is_provisionable,
    nodeclaim_from_plan,
    parse_duration,
    requirements_to_k8s,
    validate_nodepool,
    with_condition,
)
from provisioner.parsing import requirements_from_k8s
from provisioner.scheduling import simulate

from .builders import pods

CATALOG = Catalog.aws()
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "nodepool-basic.yaml"


def example() -> tuple[dict[str, Any], dict[str, Any]]:
    docs = {d["kind"]: d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d}
    return copy.deepcopy(docs["NodePool"]), copy.deepcopy(docs["NodeClass"])


def invalid(pool: dict[str, Any], nodeclass: dict[str, Any] | None) -> InvalidFieldError:
    with pytest.raises(InvalidFieldError) as info:
        validate_nodepool(pool, nodeclass, CATALOG)
    return info.value


def test_the_example_nodepool_is_valid_and_takes_its_nodeclass_zones() -> None:
    pool_obj, nodeclass = example()
    pool = validate_nodepool(pool_obj, nodeclass, CATALOG)
    assert pool.name == "default"
    assert pool.requirements[INSTANCE_TYPE].values == {"c5.large", "m5.large", "m5.xlarge"}
    assert pool.requirements[ZONE].values == {"us-east-1a", "us-east-1b", "us-east-1c"}
    assert pool.limit_names == {"cpu", "memory"}


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda p: p["spec"].update(limits={"cpu": "-8"}), "spec.limits.cpu", "negative"),
        (
            lambda p: p["spec"]["template"]["spec"]["requirements"].append(
                {
                    "key": INSTANCE_TYPE,
                    "operator": "NotIn",
                    "values": ["c5.large", "m5.large", "m5.xlarge"],
                }
            ),
            "spec.template.spec.requirements",
            f"no value of {INSTANCE_TYPE}",
        ),
        (
            lambda p: p["spec"]["template"]["spec"]["requirements"].append(
                {"key": "kubernetes.io/arch", "operator": "In", "values": ["s390x"]}
            ),
            "spec.template.spec.requirements",
            "no value of kubernetes.io/arch",
        ),
        (
            lambda p: p["spec"]["template"]["spec"]["requirements"].__setitem__(
                0, {"key": INSTANCE_TYPE, "operator": "In", "values": ["x9.huge"]}
            ),
            "spec.template.spec.requirements",
            f"no instance type has {INSTANCE_TYPE}",
        ),
        (
            lambda p: p["spec"]["template"]["spec"]["requirements"].append(
                {"key": ZONE, "operator": "In", "values": ["us-east-1f"]}
            ),
            "spec.template.spec.requirements",
            "excludes every zone",
        ),
        (
            lambda p: p["spec"]["template"]["spec"]["requirements"].append(
                {"key": "team", "operator": "Gt", "values": ["x"]}
            ),
            "spec.template.spec.requirements[3].values",
            "integer",
        ),
        (
            lambda p: p["spec"]["disruption"]["budgets"].append({"nodes": "150%"}),
            "spec.disruption.budgets[1].nodes",
            "percent",
        ),
        (
            lambda p: p["spec"]["template"]["spec"].update(expireAfter="30d"),
            "spec.template.spec.expireAfter",
            "duration",
        ),
        (
            lambda p: p["spec"]["template"]["spec"].update(terminationGracePeriod="1d"),
            "spec.template.spec.terminationGracePeriod",
            "duration",
        ),
        (
            lambda p: p["spec"]["template"]["spec"].update(nodeClassRef={"group": "x"}),
            "spec.template.spec.nodeClassRef",
            "updraft.io NodeClass",
        ),
    ],
)
def test_bad_nodepools_name_the_field(mutate: Any, field: str, words: str) -> None:
    pool, nodeclass = example()
    mutate(pool)
    error = invalid(pool, nodeclass)
    assert error.field == field
    assert words in error.message


def test_a_missing_nodeclass_is_named() -> None:
    pool, _ = example()
    error = invalid(pool, None)
    assert error.field == "spec.template.spec.nodeClassRef.name"
    assert "'default' not found" in error.message


def test_durations() -> None:
    assert parse_duration("1h30m", field="f") == 5400
    assert parse_duration("500ms", field="f") == 0.5
    assert parse_duration("Never", field="f", never=True) is None
    with pytest.raises(InvalidFieldError):
        parse_duration("Never", field="f")


@pytest.mark.parametrize(
    "items",
    [
        [{"key": "a", "operator": "In", "values": ["x", "y"]}],
        [{"key": "a", "operator": "NotIn", "values": ["x"]}],
        [{"key": "a", "operator": "Exists"}],
        [{"key": "a", "operator": "DoesNotExist"}],
        [{"key": "a", "operator": "Gt", "values": ["3"]}],
        [
            {"key": "a", "operator": "Lt", "values": ["9"]},
            {"key": "a", "operator": "Gt", "values": ["3"]},
        ],
        [{"key": "a", "operator": "Exists"}, {"key": "a", "operator": "NotIn", "values": ["x"]}],
        [{"key": "a", "operator": "In", "values": ["x", "y"], "minValues": 2}],
        [{"key": "updraft.io/nodepool", "operator": "In", "values": ["p"]}],
    ],
)
def test_requirements_survive_the_round_trip(items: list[dict[str, Any]]) -> None:
    reqs = requirements_from_k8s(items, "r")
    assert requirements_from_k8s(requirements_to_k8s(reqs), "r") == reqs


def _plans(count: int) -> tuple[dict[str, Any], Any]:
    pool_obj, nodeclass = example()
    pool_obj["metadata"]["uid"] = "uid-pool"
    pool = validate_nodepool(pool_obj, nodeclass, CATALOG)
    result = simulate(pods("p", count, "1", "64Mi"), nodepools=[pool], catalog=CATALOG)
    return pool_obj, result


def test_a_nodeclaim_carries_its_plan_and_its_ordered_options() -> None:
    pool_obj, result = _plans(5)
    assert result.price == pytest.approx(0.192 + 2 * 0.085)  # m5.xlarge + 2 x c5.large
    plan = result.new_claims[0]
    claim = nodeclaim_from_plan(plan, name="default-abcde", pool=pool_obj, batch="b1")
    meta = claim["metadata"]
    assert meta["labels"][POOL_LABEL] == "default"
    assert meta["labels"]["team"] == "web"
    assert "karpenter.sh/nodepool" not in meta["labels"]  # Updraft's pool label, not Karpenter's
    assert meta["annotations"][BATCH_ANNOTATION] == "b1"
    assert meta["finalizers"] == [FINALIZER]
    assert meta["ownerReferences"][0]["uid"] == "uid-pool"
    assert claim["spec"]["nodeClassRef"]["name"] == "default"
    assert claim_options(claim) == [t.name for t in plan.instance_types]
    expected = plan.requirements.add(
        Requirement.any_of(INSTANCE_TYPE, [t.name for t in plan.instance_types])
    )
    assert claim_requirements(claim) == expected


def test_the_pools_termination_grace_period_is_copied_and_sets_the_deadline() -> None:
    pool_obj, result = _plans(1)
    pool_obj["spec"]["template"]["spec"]["terminationGracePeriod"] = "1m30s"
    claim = nodeclaim_from_plan(result.new_claims[0], name="c", pool=pool_obj, batch="b")
    assert claim["spec"]["terminationGracePeriod"] == "1m30s"
    view = NodeClaimView.parse(claim)
    assert view.termination_grace_period == 90.0
    assert view.deadline is None  # not deleting
    claim["metadata"]["deletionTimestamp"] = "2025-01-01T12:00:00Z"
    deadline = NodeClaimView.parse(claim).deadline
    assert deadline is not None
    assert deadline.isoformat() == "2025-01-01T12:01:30+00:00"
    claim["spec"]["terminationGracePeriod"] = "soon"
    with pytest.raises(InvalidFieldError, match=r"spec.terminationGracePeriod"):
        NodeClaimView.parse(claim)


def test_in_flight_claims_take_the_same_burst_again() -> None:
    """The restart guarantee: NodeClaims already created hold the pods they were made for, so
    simulating the same pending pods against them makes no new claim."""
    pool_obj, result = _plans(5)
    pool = validate_nodepool(pool_obj, example()[1], CATALOG)
    claims = [
        nodeclaim_from_plan(p, name=f"default-{i}", pool=pool_obj, batch="b")
        for i, p in enumerate(result.new_claims)
    ]
    views = [claim_view(c, CATALOG) for c in claims]
    assert all(v.in_flight and v.nodepool == "default" for v in views)
    again = simulate(pods("p", 5, "1", "64Mi"), nodepools=[pool], catalog=CATALOG, nodes=views)
    assert again.new_claims == ()
    assert len(again.placed) == 5
    # Pool limits count in-flight claims at their largest option.
    assert sum(v.capacity.cpu for v in views) == 4000 + 2 * 2000


def test_a_launched_claim_is_seen_at_its_instance_size() -> None:
    pool_obj, result = _plans(1)
    claim = nodeclaim_from_plan(result.new_claims[0], name="c", pool=pool_obj, batch="b")
    claim["status"] = {
        "allocatable": {"cpu": "3920m", "memory": "14162Mi", "pods": "58"},
        "capacity": {"cpu": "4", "memory": "15155Mi", "pods": "58"},
    }
    view = claim_view(claim, CATALOG)
    assert view.allocatable.cpu == 3920
    assert view.capacity.cpu == 4000


def _pod(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "n"},
        "spec": {},
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
            **status,
        },
    }


def test_provisionable_pods() -> None:
    assert is_provisionable(_pod())
    assert not is_provisionable(_pod(nominatedNodeName="n1"))
    assert not is_provisionable(
        _pod(conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulerError"}])
    )
    bound = _pod()
    bound["spec"]["nodeName"] = "n1"
    assert not is_provisionable(bound)
    daemon = _pod()
    daemon["metadata"]["ownerReferences"] = [{"kind": "DaemonSet", "name": "d"}]
    assert not is_provisionable(daemon)
    mirror = _pod()
    mirror["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "x"}
    assert not is_provisionable(mirror)
    leaving = _pod()
    leaving["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert not is_provisionable(leaving)


def test_a_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    first = with_condition([], "Ready", status=True, reason="Ready")
    first[0]["lastTransitionTime"] = "2026-01-01T00:00:00Z"
    same = with_condition(first, "Ready", status=True, reason="Ready", message="again")
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    flipped = with_condition(same, "Ready", status=False, reason="InvalidSpec")
    assert flipped[0]["lastTransitionTime"] != "2026-01-01T00:00:00Z"
    both = with_condition(flipped, "Launched", status=True, reason="Launched")
    assert [c["type"] for c in both] == ["Ready", "Launched"]


def test_pool_label_aliases_the_simulation_key() -> None:
    reqs = Requirements.from_labels({POOL_LABEL: "p"})
    assert reqs[NODEPOOL].single_value() == "p"


def test_disrupted_taints_adds_and_removes_only_the_disrupted_taint() -> None:
    other = {"key": "team", "value": "a", "effect": "NoSchedule"}
    node = {"spec": {"taints": [other]}}
    added = disrupted_taints(node, present=True)
    assert added == [other, {"key": DISRUPTED_TAINT, "effect": "NoSchedule"}]
    assert disrupted_taints({"spec": {"taints": added}}, present=True) is None
    assert disrupted_taints({"spec": {"taints": added}}, present=False) == [other]
    assert disrupted_taints({}, present=False) is None
