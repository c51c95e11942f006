"""The requirements algebra: operators, intersection, compatibility and their reasons."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioner import Requirement, RequirementError, Requirements
from provisioner.labels import WELL_KNOWN_LABELS, ZONE

K = "example.com/k"
VALUES = ["1", "2", "3", "10", "a", "b"]
PROBES = [None, "0", "1", "2", "3", "5", "10", "11", "a", "b", "c", "007"]


def req(op: str, *values: str, min_values: int | None = None) -> Requirement:
    return Requirement.new(K, op, values, min_values=min_values)


@pytest.mark.parametrize(
    ("op", "values", "admitted"),
    [
        ("In", ("a", "b"), {"a", "b"}),
        ("NotIn", ("a", "b"), {None, "0", "1", "2", "3", "5", "10", "11", "c", "007"}),
        ("Exists", (), {"0", "1", "2", "3", "5", "10", "11", "a", "b", "c", "007"}),
        ("DoesNotExist", (), {None}),
        ("Gt", ("3",), {"5", "10", "11", "007"}),
        ("Lt", ("3",), {"0", "1", "2"}),
    ],
)
def test_operator_semantics(op: str, values: tuple[str, ...], admitted: set[str | None]) -> None:
    r = req(op, *values)
    assert {p for p in PROBES if r.has(p)} == admitted


def test_gt_and_lt_intersect_to_a_range_or_nothing() -> None:
    between = req("Gt", "1").intersect(req("Lt", "3"))
    assert [p for p in PROBES if between.has(p)] == ["2"]
    assert req("Gt", "2").intersect(req("Lt", "3")).is_empty()
    assert str(req("Gt", "2").intersect(req("Lt", "3"))) == "no value"


def test_in_intersected_with_bounds_keeps_only_integers_in_range() -> None:
    r = req("In", "1", "5", "a").intersect(req("Gt", "2"))
    assert r == Requirement.any_of(K, ["5"])
    assert r.single_value() == "5"


def test_does_not_exist_and_not_in_are_compatible() -> None:
    both = req("DoesNotExist").intersect(req("NotIn", "a"))
    assert not both.is_empty()
    assert str(both) == "DoesNotExist"
    assert req("DoesNotExist").intersect(req("Exists")).is_empty()
    assert req("In", "a").intersect(req("NotIn", "a")).is_empty()


def test_min_values_is_carried_through_intersection() -> None:
    r = req("In", "a", "b", min_values=2).intersect(req("Exists"))
    assert r.min_values == 2


@pytest.mark.parametrize(
    ("op", "values", "min_values", "field"),
    [
        ("Equals", ("a",), None, "r.operator"),
        ("In", (), None, "r.values"),
        ("Exists", ("a",), None, "r.values"),
        ("Gt", ("x",), None, "r.values"),
        ("Lt", ("1", "2"), None, "r.values"),
        ("In", ("a",), 2, "r.minValues"),
        ("In", ("a",), 0, "r.minValues"),
    ],
)
def test_invalid_requirements_name_the_field(
    op: str, values: tuple[str, ...], min_values: int | None, field: str
) -> None:
    with pytest.raises(RequirementError) as info:
        Requirement.new(K, op, values, min_values=min_values, field="r")
    assert info.value.field == field


def test_beta_keys_are_normalized() -> None:
    r = Requirement.new("failure-domain.beta.kubernetes.io/zone", "In", ["z1"])
    assert r.key == ZONE


def test_admit_names_the_failing_key() -> None:
    pool = Requirements([Requirement.new("karpenter.sh/capacity-type", "In", ["on-demand"])])
    pod = Requirements([Requirement.new("karpenter.sh/capacity-type", "In", ["spot"])])
    assert pool.admit(pod, undefined_ok=WELL_KNOWN_LABELS) == (
        "karpenter.sh/capacity-type: In [spot] does not intersect In [on-demand]"
    )


def test_admit_undefined_keys() -> None:
    pool = Requirements()
    custom = Requirements([Requirement.new("team", "In", ["a"])])
    assert pool.admit(custom, undefined_ok=WELL_KNOWN_LABELS) == (
        "team: In [a] but the label is not defined here"
    )
    # Absent labels satisfy NotIn and DoesNotExist; well-known keys come from instance types.
    assert (
        pool.admit(
            Requirements([Requirement.new("team", "NotIn", ["a"])]), undefined_ok=frozenset()
        )
        is None
    )
    assert (
        pool.admit(
            Requirements([Requirement.new(ZONE, "In", ["z"])]), undefined_ok=WELL_KNOWN_LABELS
        )
        is None
    )


def test_match_labels_reports_the_node_value() -> None:
    reqs = Requirements([Requirement.new("team", "In", ["a"])])
    assert reqs.match_labels({"team": "a"}) is None
    assert reqs.match_labels({"team": "b"}) == "team: In [a] but the node has 'b'"
    assert reqs.match_labels({}) == "team: In [a] but the node has absent"


def test_requirements_merge_same_key_and_hash_by_value() -> None:
    a = Requirements([req("In", "a", "b"), req("In", "b", "c")])
    assert a[K] == Requirement.any_of(K, ["b"])
    assert hash(a) == hash(Requirements([Requirement.any_of(K, ["b"])]))
    assert a == Requirements([Requirement.any_of(K, ["b"])])
    assert a.single_values() == {K: "b"}


# --- properties ------------------------------------------------------------------------------

_ops = st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"])


@st.composite
def requirements(draw: st.DrawFn) -> Requirement:
    op = draw(_ops)
    if op in ("In", "NotIn"):
        values = draw(st.lists(st.sampled_from(VALUES), min_size=1, max_size=4))
    elif op in ("Gt", "Lt"):
        values = [str(draw(st.integers(min_value=-2, max_value=12)))]
    else:
        values = []
    return Requirement.new(K, op, values)


@given(requirements(), requirements())
def test_intersection_is_commutative(a: Requirement, b: Requirement) -> None:
    assert a.intersect(b) == b.intersect(a)


@given(requirements(), requirements(), requirements())
def test_intersection_is_associative(a: Requirement, b: Requirement, c: Requirement) -> None:
    assert a.intersect(b).intersect(c) == a.intersect(b.intersect(c))


@given(requirements(), requirements())
def test_intersection_admits_exactly_what_both_admit(a: Requirement, b: Requirement) -> None:
    both = a.intersect(b)
    for probe in PROBES:
        assert both.has(probe) == (a.has(probe) and b.has(probe))


@given(requirements(), requirements())
def test_compatible_iff_intersection_non_empty(a: Requirement, b: Requirement) -> None:
    ra, rb = Requirements([a]), Requirements([b])
    compatible = ra.conflict(rb) is None
    assert compatible == (not a.intersect(b).is_empty())
    assert compatible == (ra.admit(rb, undefined_ok=frozenset()) is None)
    # Non-empty means some state is admitted; check against a probe when one exists.
    if any(a.has(p) and b.has(p) for p in PROBES):
        assert compatible
