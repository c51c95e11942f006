"""Quantity strings: the canonical form the HPA parses, rounding to the milli, and parsing."""

from __future__ import annotations

import math
from decimal import ROUND_UP, Context, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapter import NonFiniteValueError, QuantityError, format_quantity, parse_quantity
from adapter.quantity import to_millis


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
    assert format_quantity(value) == text


def test_fractions_of_a_milli_round_away_from_zero_like_milli_value() -> None:
    # The HPA's MilliValue() rounds 100u up to 1m: a tiny value never reads as zero.
    assert format_quantity(0.0001) == "1m"
    assert format_quantity(Decimal("0.0010001")) == "2m"
    assert format_quantity(-0.0001) == "-1m"
    assert format_quantity(Decimal("2.000")) == "2"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, Decimal("NaN")])
def test_non_finite_values_are_refused(value: float | Decimal) -> None:
    with pytest.raises(NonFiniteValueError):
        format_quantity(value)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("250m", "0.25"),
        ("1500", "1500"),
        ("1.5k", "1500"),
        ("1Ki", "1024"),
        ("2Gi", str(2 * 2**30)),
        ("100u", "0.0001"),
        ("5n", "0.000000005"),
        ("1.5e3", "1500"),
        ("2E-3", "0.002"),
        ("+7", "7"),
        ("-0.5", "-0.5"),
        (".5", "0.5"),
        ("3.", "3"),
        ("1e21", "1e21"),
    ],
)
def test_parse(text: str, value: str) -> None:
    assert parse_quantity(text) == Decimal(value)


@pytest.mark.parametrize(
    "text", ["", "m", "1.2.3", "1 m", "1mi", "1KiB", "--1", "1e", "0x10", "e3"]
)
def test_parse_rejects_what_is_not_a_quantity(text: str) -> None:
    with pytest.raises(QuantityError, match="expected form"):
        parse_quantity(text)


def test_parse_rejects_an_absurd_exponent() -> None:
    with pytest.raises(QuantityError, match="out of range"):
        parse_quantity("1e99999999999")


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_format_then_parse_gives_the_value_to_the_milli(value: float) -> None:
    text = format_quantity(value)
    parsed = parse_quantity(text)
    # Within one milli of the float (taken at 15 significant digits), never towards zero.
    exact = Decimal(f"{value:.15g}")
    assert abs(parsed - exact) <= Decimal("0.001")
    assert abs(parsed) >= abs(exact)
    assert parsed * 1000 == to_millis(value)
    assert format_quantity(parsed) == text


@given(st.decimals(allow_nan=False, allow_infinity=False, places=6))
def test_decimals_round_trip_exactly_to_the_milli(value: Decimal) -> None:
    expected = value.quantize(Decimal("0.001"), rounding=ROUND_UP, context=Context(prec=100))
    assert parse_quantity(format_quantity(value)) == expected


@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_integers_round_trip_exactly(value: int) -> None:
    text = format_quantity(value)
    assert parse_quantity(text) == value
    # Canonical: no trailing zeros a suffix could absorb, no leading zeros.
    digits = text.lstrip("-").rstrip("mkMGTPE")
    assert not digits.startswith("0") or digits == "0"
