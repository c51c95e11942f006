"""Kubernetes quantity parsing and formatting."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioner import (
    InvalidFieldError,
    QuantityError,
    Resources,
    format_cpu,
    format_quantity,
    parse_quantity,
    to_millis,
    to_units,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100m", Fraction(1, 10)),
        ("1.5", Fraction(3, 2)),
        ("4Gi", Fraction(4 * 2**30)),
        ("512M", Fraction(512 * 10**6)),
        ("1e3", Fraction(1000)),
        ("1E3", Fraction(1000)),
        ("2E", Fraction(2 * 10**18)),
        ("1.5Ki", Fraction(1536)),
        (".5", Fraction(1, 2)),
        ("250u", Fraction(250, 10**6)),
        ("+3k", Fraction(3000)),
        (7, Fraction(7)),
        (0.25, Fraction(1, 4)),
    ],
)
def test_parse_quantity(text: str | int | float, expected: Fraction) -> None:
    assert parse_quantity(text, field="f") == expected


def test_cpu_rounds_up_to_a_millicore() -> None:
    assert to_millis("1.0001", field="cpu") == 1001
    assert to_millis("100m", field="cpu") == 100
    assert to_millis("2", field="cpu") == 2000
    assert to_units("1.5", field="memory") == 2


@pytest.mark.parametrize(
    "bad", ["", "abc", "1.2.3", "4GB", "1Gi ", "-1", "--1", "1e999", True, None]
)
def test_bad_quantity_names_the_field(bad: object) -> None:
    with pytest.raises(QuantityError) as info:
        parse_quantity(bad, field="spec.containers[0].resources.requests.cpu")
    assert info.value.field == "spec.containers[0].resources.requests.cpu"
    assert isinstance(info.value, InvalidFieldError)
    assert str(info.value).startswith("spec.containers[0].resources.requests.cpu: ")


def test_resources_parse_error_names_the_resource() -> None:
    with pytest.raises(QuantityError, match=r"^limits\.memory: "):
        Resources.parse({"cpu": "1", "memory": "lots"}, field="limits")


@given(st.integers(min_value=0, max_value=2**62))
def test_format_quantity_round_trips(units: int) -> None:
    assert to_units(format_quantity(units), field="f") == units


@given(st.integers(min_value=0, max_value=10**9))
def test_format_cpu_round_trips(millis: int) -> None:
    assert to_millis(format_cpu(millis), field="cpu") == millis


def test_format_uses_the_largest_exact_suffix() -> None:
    assert format_quantity(4 * 2**30) == "4Gi"
    assert format_quantity(1536) == "1536"
    assert format_quantity(3 * 2**20) == "3Mi"
    assert format_cpu(1500) == "1500m"
    assert format_cpu(2000) == "2"


def test_resources_arithmetic_is_exact() -> None:
    a = Resources.parse({"cpu": "1500m", "memory": "1Gi", "nvidia.com/gpu": "1"}, field="a")
    b = Resources.parse({"cpu": "500m", "memory": "1Gi"}, field="b")
    assert (a + b).as_dict() == {"cpu": 2000, "memory": 2 * 2**30, "nvidia.com/gpu": 1}
    assert (a - b).as_dict() == {"cpu": 1000, "nvidia.com/gpu": 1}
    assert a.exceeding(b) == "cpu"
    assert b.fits(a)
    assert not a.fits(b)
    assert str(a) == "cpu=1500m,memory=1Gi,nvidia.com/gpu=1"
