"""Kubernetes `resource.Quantity` strings: the canonical form we emit and a parser.

Owns turning a metric value into the exact string apimachinery would print for the same
quantity (DecimalSI), and reading any Quantity string back (for tests and round trips). It must
not know about metrics, requests or HTTP.

How values are rounded: the HPA reads every value as `MilliValue()`, which rounds any fraction
of a milli *away from zero*. We round the same way to whole millis before formatting, so the
HPA computes the same milli value from our string as from the exact value, the output never
needs the `u`/`n` suffixes, and a tiny non-zero value (0.0004) never turns into "0" (which
would read as "idle" for scale-to-zero). A float is first taken at 15 significant digits
(the precision every float round-trips through), so 0.1 + 0.2 becomes `300m` and not `301m`;
`int` and `Decimal` inputs are taken exactly.

Canonical form: strip trailing zeros of the integer milli count into a power of ten, lower that
power to a multiple of three, and print the digits with the suffix of that power (`m`, none,
`k`, `M`, `G`, `T`, `P`, `E`). Powers above 10^18 print as `e<power>`, as apimachinery does;
the HPA cannot use such values anyway (its milli int64 overflows above about 9.2e15).
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_UP, Context, Decimal

from adapter.errors import NonFiniteValueError, QuantityError

_MILLI = Decimal("0.001")
_EXACT = Context(prec=200)
"""Enough digits for any float (the largest is about 1.8e308) with three decimals to spare."""

_FLOAT_EXACT_INTEGERS = 1e15
"""Below this an integral float has at most 15 digits, so it is already what the 15-digit rule
gives and needs no Decimal at all."""

_DECIMAL_SUFFIXES = {-3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}

_PARSE_SUFFIXES: dict[str, Decimal] = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}

_QUANTITY = re.compile(
    r"(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?P<suffix>[eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)"
)


def to_millis(value: float | int | Decimal) -> int:
    """The whole number of millis the adapter reports for `value` (rounded away from zero)."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < _FLOAT_EXACT_INTEGERS:
            return int(value) * 1000  # the common case (counts, lengths), without Decimal
        if not math.isfinite(value):
            raise NonFiniteValueError(f"metric value {value!r} cannot be expressed as a Quantity")
        exact = Decimal(f"{value:.15g}")
    elif isinstance(value, int):
        exact = Decimal(value)
    else:
        if not value.is_finite():
            raise NonFiniteValueError(f"metric value {value!r} cannot be expressed as a Quantity")
        exact = value
    millis = _EXACT.multiply(exact, Decimal(1000))
    return int(millis.to_integral_value(rounding=ROUND_UP, context=_EXACT))


def format_quantity(value: float | int | Decimal) -> str:
    """The canonical DecimalSI Quantity string for `value`, rounded to the milli (see the
    module docstring). Raises `NonFiniteValue` for NaN and infinities."""
    millis = to_millis(value)
    if millis == 0:
        return "0"
    sign = "-" if millis < 0 else ""
    digits = str(abs(millis))
    stripped = digits.rstrip("0")
    exponent = len(digits) - len(stripped) - 3
    # Python's % is never negative, so this lowers the exponent to a multiple of three.
    shift = exponent % 3
    mantissa = stripped + "0" * shift
    exponent -= shift
    suffix = _DECIMAL_SUFFIXES.get(exponent)
    if suffix is None:
        suffix = f"e{exponent}"
    return f"{sign}{mantissa}{suffix}"


def parse_quantity(text: str) -> Decimal:
    """The exact value of any Quantity string (`250m`, `1.5Gi`, `2e3`, `-0.5`).

    Unlike apimachinery it does not round fractions of a nano; callers compare in millis.
    Raises `QuantityError` naming the text for anything else.
    """
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise QuantityError(
            f"quantity {text!r} does not match the expected form "
            "'[+-]<digits>[.<digits>][suffix]' with suffix one of n u m k M G T P E, "
            "Ki Mi Gi Ti Pi Ei, or e<exponent>"
        )
    try:
        number = Decimal(match["number"])
        suffix = match["suffix"]
        if len(suffix) > 1 and suffix[0] in ("e", "E") and suffix[1] != "i":
            # An exponent (`2e3`, `1E-3`); a bare `E` is the exa suffix and `Ei` is exbi.
            scale = _EXACT.power(Decimal(10), int(suffix[1:]))
        else:
            scale = _PARSE_SUFFIXES[suffix]
        result = _EXACT.multiply(number, scale)
    except (ArithmeticError, ValueError) as exc:
        raise QuantityError(f"quantity {text!r} is out of range") from exc
    return _EXACT.minus(result) if match["sign"] == "-" else result
