"""Metric values as Quantity strings: the canonical form the HPA parses, rounding to the milli.

The grammar itself (parsing, the canonical form of exact values) is tested in tests/unit/kits.
"""

from __future__ import annotations

import math
from decimal import ROUND_UP, Context, Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapter import NonFiniteValueError, format_metric_value
from adapter.quantity import metric_millis
from kits.quantity import parse_quantity


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (0.0, "0"),
        (-0.0, "0"),
        (0.25, "250m"),
        (1.5, "1500m"),
        (1500, "1500"),
        (1500.5, "1500500m"),
        (1000, "1k"),
        (1500000, "1500k"),
        (2e6, "2M"),
        (12345678.9, "12345678900m"),
        (-0.25, "-250m"),
        (-1500, "-1500"),
        (-2e9, "-2G"),
        (1e18, "1E"),
        (1e21, "1e21"),
        (Decimal("123.456789"), "123457m"),
        (0.1 + 0.2, "300m"),
        (True, "1"),
    ],
)
def test_canonical_form(value: float | int | Decimal, text: str) -> None:
    assert format_metric_value(value) == text


def test_fractions_of_a_milli_round_away_from_zero_like_milli_value() -> None:
    # The HPA's MilliValue() rounds 100u up to 1m: a tiny value never reads as zero.
    assert format_metric_value(0.0001) == "1m"
    assert format_metric_value(Decimal("0.0010001")) == "2m"
    assert format_metric_value(-0.0001) == "-1m"
    assert format_metric_value(Decimal("2.000")) == "2"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, Decimal("NaN")])
def test_non_finite_values_are_refused(value: float | Decimal) -> None:
    with pytest.raises(NonFiniteValueError):
        format_metric_value(value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_format_then_parse_gives_the_value_to_the_milli(value: float) -> None:
    text = format_metric_value(value)
    parsed = parse_quantity(text)
    # Within one milli of the float (taken at 15 significant digits), never towards zero.
    exact = Fraction(Decimal(f"{value:.15g}"))
    assert abs(parsed - exact) <= Fraction(1, 1000)
    assert abs(parsed) >= abs(exact)
    assert parsed * 1000 == metric_millis(value)
    assert format_metric_value(parsed) == text


@given(st.decimals(allow_nan=False, allow_infinity=False, places=6))
def test_decimals_round_trip_exactly_to_the_milli(value: Decimal) -> None:
    expected = value.quantize(Decimal("0.001"), rounding=ROUND_UP, context=Context(prec=100))
    assert parse_quantity(format_metric_value(value)) == expected


@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_integers_round_trip_exactly(value: int) -> None:
    text = format_metric_value(value)
    assert parse_quantity(text) == value
    # Canonical: no trailing zeros a suffix could absorb, no leading zeros.
    digits = text.lstrip("-").rstrip("mkMGTPE")
    assert not digits.startswith("0") or digits == "0"
