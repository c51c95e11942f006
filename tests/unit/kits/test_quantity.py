"""The one Quantity grammar: exact parsing and the canonical DecimalSI form."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kits.quantity import format_quantity, parse_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("250m", Fraction(1, 4)),
        ("1500", Fraction(1500)),
        ("1.5k", Fraction(1500)),
        ("1Ki", Fraction(1024)),
        ("2Gi", Fraction(2 * 2**30)),
        ("1.5Ki", Fraction(1536)),
        ("100u", Fraction(1, 10**4)),
        ("5n", Fraction(5, 10**9)),
        ("1.5e3", Fraction(1500)),
        ("1E3", Fraction(1000)),
        ("2E-3", Fraction(2, 1000)),
        ("2E", Fraction(2 * 10**18)),
        ("1Ei", Fraction(2**60)),
        ("+7", Fraction(7)),
        ("+3k", Fraction(3000)),
        ("-0.5", Fraction(-1, 2)),
        (".5", Fraction(1, 2)),
        ("3.", Fraction(3)),
        ("1e21", Fraction(10**21)),
    ],
)
def test_parse(text: str, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text",
    ["", "m", "1.2.3", "1 m", "1mi", "1KiB", "4GB", "--1", "1e", "0x10", "e3", " 1", "\u0661"],
)
def test_parse_rejects_what_is_not_a_quantity(text: str) -> None:
    with pytest.raises(ValueError, match="expected form"):
        parse_quantity(text)


@pytest.mark.parametrize("text", ["1e99999999999", "1e999", "1e-309"])
def test_parse_rejects_an_absurd_exponent(text: str) -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_quantity(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (Fraction(1, 4), "250m"),
        (1500, "1500"),
        (1000, "1k"),
        (Fraction(3, 2), "1500m"),
        (2 * 10**6, "2M"),
        (-2 * 10**9, "-2G"),
        (10**18, "1E"),
        (10**21, "1e21"),
        (Fraction(1, 10**4), "100u"),
        (Fraction(5, 10**9), "5n"),
        (1024, "1024"),
    ],
)
def test_canonical_form(value: Fraction | int, text: str) -> None:
    assert format_quantity(value) == text


@pytest.mark.parametrize("value", [Fraction(1, 3), Fraction(1, 10**10)])
def test_format_refuses_to_round(value: Fraction) -> None:
    with pytest.raises(ValueError, match="round"):
        format_quantity(value)


@given(st.integers(min_value=-(10**30), max_value=10**30), st.integers(min_value=0, max_value=9))
def test_format_then_parse_is_exact(digits: int, places: int) -> None:
    value = Fraction(digits, 10**places)
    text = format_quantity(value)
    assert parse_quantity(text) == value
    # Canonical: no leading zeros, and no trailing zeros a suffix could absorb.
    mantissa = text.lstrip("-").rstrip("numkMGTPE")
    assert not mantissa.startswith("0") or mantissa == "0"
