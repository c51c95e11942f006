"""Kubernetes resource quantities: parse (``100m``, ``1.5``, ``4Gi``, ``512M``, ``1e3``) and format.

Owns the quantity grammar of ``k8s.io/apimachinery`` resource.Quantity and the rounding rules the
provisioner uses: CPU is kept in integer millicores, everything else in integer base units (bytes,
pods, GPUs). Arithmetic is exact (``fractions.Fraction``); a value that is not a whole number of
the target unit is rounded *up*, as the API server does for requests, so a pod is never
under-counted. This module must not know which resource a field is beyond the unit it is asked
for; callers pass the field path so errors name it.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from provisioner.errors import QuantityError

__all__ = ["format_cpu", "format_quantity", "parse_quantity", "to_millis", "to_units"]

_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:(?P<exp>[eE][+-]?\d+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
# An exponent this large would make Fraction arithmetic explode; no real quantity comes close.
_MAX_EXPONENT = 30


def parse_quantity(value: object, *, field: str) -> Fraction:
    """Parse a quantity (string, or int/float from YAML) into an exact non-negative number.

    >>> parse_quantity("1.5Gi", field="memory")
    Fraction(1610612736, 1)
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise QuantityError(field, f"expected a quantity string or number, got {value!r}")
    text = value if isinstance(value, str) else repr(value)
    match = _QUANTITY.match(text.strip())
    if match is None or text != text.strip():
        raise QuantityError(field, f"{text!r} is not a Kubernetes quantity (e.g. 100m, 1.5, 4Gi)")
    number = Fraction(match["num"])
    if match["exp"] is not None:
        exponent = int(match["exp"][1:])
        if abs(exponent) > _MAX_EXPONENT:
            raise QuantityError(field, f"{text!r}: exponent out of range")
        number *= Fraction(10) ** exponent
    elif (suffix := match["suffix"]) is not None:
        number *= _BINARY[suffix] if suffix in _BINARY else _DECIMAL[suffix]
    if number < 0:
        raise QuantityError(field, f"{text!r} is negative")
    return number


def to_millis(value: object, *, field: str) -> int:
    """Parse a CPU-like quantity into integer millis, rounding up (``1.0001`` -> 1001)."""
    return math.ceil(parse_quantity(value, field=field) * 1000)


def to_units(value: object, *, field: str) -> int:
    """Parse a quantity into whole base units (bytes, pods, GPUs), rounding up."""
    return math.ceil(parse_quantity(value, field=field))


def format_cpu(millis: int) -> str:
    """Format millicores the way kubectl shows them: ``2`` for 2000, ``1500m`` otherwise."""
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def format_quantity(units: int) -> str:
    """Format a whole number of base units with the largest exact binary suffix (``4Gi``)."""
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        size = _BINARY[suffix]
        if units and units % size == 0:
            return f"{units // size}{suffix}"
    return str(units)
