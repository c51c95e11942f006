"""Label selectors: the Kubernetes grammar, matching, errors and PromQL rendering."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapter import AdapterError, Operator, Requirement, Selector, SelectorError, parse_selector


def test_every_form_parses() -> None:
    selector = parse_selector(
        " app.kubernetes.io/name = web , tier==front,env!=prod, zone in (b, a,a),"
        "arch notin (arm64), gpu ,!spot, region= "
    )
    assert selector.requirements == (
        Requirement("app.kubernetes.io/name", Operator.EQUALS, ("web",)),
        Requirement("tier", Operator.EQUALS, ("front",)),
        Requirement("env", Operator.NOT_EQUALS, ("prod",)),
        Requirement("zone", Operator.IN, ("a", "b")),
        Requirement("arch", Operator.NOT_IN, ("arm64",)),
        Requirement("gpu", Operator.EXISTS),
        Requirement("spot", Operator.DOES_NOT_EXIST),
        Requirement("region", Operator.EQUALS, ("",)),
    )
    assert str(selector) == (
        "app.kubernetes.io/name=web,tier=front,env!=prod,zone in (a,b),arch notin (arm64),"
        "gpu,!spot,region="
    )


@pytest.mark.parametrize("text", [None, "", "   "])
def test_empty_selects_everything(text: str | None) -> None:
    selector = parse_selector(text)
    assert selector == Selector()
    assert not selector
    assert selector.matches({"anything": "x"})
    assert selector.to_promql() == ""
    assert selector.to_label_selector() is None


def test_keywords_may_be_keys_and_values() -> None:
    assert parse_selector("in=notin").requirements == (
        Requirement("in", Operator.EQUALS, ("notin",)),
    )


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("a=1", {"a": "1"}, True),
        ("a=1", {"a": "2"}, False),
        ("a=1", {}, False),
        ("a!=1", {}, True),
        ("a!=1", {"a": "1"}, False),
        ("a in (1,2)", {"a": "2"}, True),
        ("a in (1,2)", {}, False),
        ("a notin (1,2)", {}, True),
        ("a notin (1,2)", {"a": "1"}, False),
        ("a", {"a": ""}, True),
        ("a", {}, False),
        ("!a", {}, True),
        ("!a", {"a": "1"}, False),
        ("a=1,b", {"a": "1"}, False),
        ("a=1,b", {"a": "1", "b": "x"}, True),
    ],
)
def test_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_selector(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "token", "position", "expected"),
    [
        ("a in b", "b", 5, "'('"),
        ("a in ()", ")", 6, "at least one value"),
        ("a in (x y)", "y", 8, "',' or ')'"),
        ("a in (x", "", 7, "',' or ')'"),
        ("a=b c", "c", 4, "',' or end of input"),
        ("a > 3", ">", 2, "'='"),
        ("=b", "=", 0, "a label key"),
        ("a,", "", 2, "a label key"),
        ("-bad=1", "-bad", 0, "a label key"),
        ("Example.com/x=1", "Example.com/x", 0, "a label key"),
        ("a/b/c", "a/b/c", 0, "a label key"),
        ("x=" + "v" * 64, "v" * 64, 2, "a label value"),
        ("x=a=b", "=", 3, "',' or end of input"),
        ("x===", "=", 3, "a label value"),
        ("!", "", 1, "a label key"),
    ],
)
def test_errors_name_token_position_and_expected_form(
    text: str, token: str, position: int, expected: str
) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_selector(text)
    error = caught.value
    assert (error.token, error.position) == (token, position)
    assert expected in error.expected
    assert f"position {position}" in error.message
    assert error.code == 400


def test_promql_matchers() -> None:
    selector = parse_selector(
        "app=web,env!=prod,zone in (a.b,c-d),arch notin (x),gpu,!spot,app.kubernetes.io/name=n"
    )
    assert selector.to_promql() == (
        'app="web",env!="prod",zone=~"a\\\\.b|c-d",arch!~"x",gpu!="",spot="",'
        '"app.kubernetes.io/name"="n"'
    )
    renamed = selector.to_promql(label_name=lambda key: "label_" + key.replace(".", "_"))
    assert renamed.startswith('label_app="web"')


def test_label_selector_json() -> None:
    assert parse_selector("a=1,b!=2,c in (x),d notin (y),e,!f").to_label_selector() == {
        "matchLabels": {"a": "1"},
        "matchExpressions": [
            {"key": "b", "operator": "NotIn", "values": ["2"]},
            {"key": "c", "operator": "In", "values": ["x"]},
            {"key": "d", "operator": "NotIn", "values": ["y"]},
            {"key": "e", "operator": "Exists"},
            {"key": "f", "operator": "DoesNotExist"},
        ],
    }


_ALPHABET = st.sampled_from([*"ab.-_/ =!,()<>\t", "in", "notin", "x", "1"])


@given(st.text())
def test_no_text_crashes_the_parser(text: str) -> None:
    # Anything but the adapter's own error escapes and fails the test.
    failure: AdapterError | None = None
    try:
        parse_selector(text)
    except AdapterError as error:
        failure = error
    assert failure is None or isinstance(failure, SelectorError)


@given(st.lists(_ALPHABET, max_size=20).map("".join))
def test_selector_like_text_parses_or_raises_selector_error_and_round_trips(text: str) -> None:
    try:
        selector = parse_selector(text)
    except SelectorError as error:
        failure = error
    else:
        assert parse_selector(str(selector)) == selector
        return
    assert 0 <= failure.position <= len(text)
