"""Kubernetes `resource.Quantity` strings: the one grammar, parsed to an exact number, and the
canonical decimal form.

Owns reading any Quantity string (`250m`, `1.5Gi`, `2e3`, `-0.5`) into an exact `Fraction`, and
printing an exact decimal value the way apimachinery prints a DecimalSI quantity. It does not
round: how a value is rounded (the adapter: away from zero to the milli, as the HPA reads it; the
provisioner: up to the millicore or unit, as the API server counts requests) belongs to each
caller, and so do field names in errors. Errors are plain `ValueError`s naming the text.

Canonical form: strip trailing zeros of the digits into a power of ten, lower that power to a
multiple of three, and print the digits with the suffix of that power (`n`, `u`, `m`, none, `k`,
`M`, `G`, `T`, `P`, `E`). Powers above 10^18 print as `e<power>`, as apimachinery does.
"""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = ["MAX_EXPONENT", "format_quantity", "parse_quantity"]

MAX_EXPONENT = 308
"""The largest power of ten (either way) a quantity may carry: a float's range, beyond which no
client can hold the value, and below which exact `Fraction` arithmetic stays cheap (an exponent
of a billion would build a billion-digit integer)."""

_SUFFIXES: dict[str, Fraction] = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}
_DECIMAL_SUFFIXES = {
    -9: "n",
    -6: "u",
    -3: "m",
    0: "",
    3: "k",
    6: "M",
    9: "G",
    12: "T",
    15: "P",
    18: "E",
}

# ASCII digits only ([0-9], not \d), as apimachinery reads them. An exponent comes first so that
# `2e3` is 2000 while a bare `E` stays the exa suffix and `Ei` exbi.
_QUANTITY = re.compile(
    r"(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?P<suffix>[eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)"
)


def parse_quantity(text: str) -> Fraction:
    """The exact value of the Quantity string `text`; ValueError naming it for anything else.

    >>> parse_quantity("1.5Gi")
    Fraction(1610612736, 1)
    """
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(
            f"quantity {text!r} does not match the expected form "
            "'[+-]<digits>[.<digits>][suffix]' with suffix one of n u m k M G T P E, "
            "Ki Mi Gi Ti Pi Ei, or e<exponent>"
        )
    suffix = match["suffix"]
    if len(suffix) > 1 and suffix[0] in ("e", "E") and suffix != "Ei":
        exponent = int(suffix[1:])
        if abs(exponent) > MAX_EXPONENT:
            raise ValueError(f"quantity {text!r} is out of range (|exponent| > {MAX_EXPONENT})")
        scale = Fraction(10) ** exponent
    else:
        scale = _SUFFIXES[suffix]
    value = Fraction(match["number"]) * scale
    return -value if match["sign"] == "-" else value


def format_quantity(value: Fraction | int) -> str:
    """The canonical DecimalSI string of `value`, exactly. ValueError if `value` is not a whole
    number of nanos (round it first: the rounding is the caller's)."""
    value = Fraction(value)
    numerator, denominator = value.numerator, value.denominator
    nanos, rest = divmod(numerator * 10**9, denominator)
    if rest:
        raise ValueError(f"{value} is not a whole number of nanos; round it before formatting")
    if nanos == 0:
        return "0"
    sign = "-" if nanos < 0 else ""
    digits = str(abs(nanos))
    stripped = digits.rstrip("0")
    exponent = len(digits) - len(stripped) - 9
    # Python's % is never negative, so this lowers the exponent to a multiple of three.
    shift = exponent % 3
    mantissa = stripped + "0" * shift
    exponent -= shift
    suffix = _DECIMAL_SUFFIXES.get(exponent)
    if suffix is None:
        suffix = f"e{exponent}"
    return f"{sign}{mantissa}{suffix}"
