"""Kubernetes resource quantities as the provisioner counts them: in whole millicores and units.

The quantity grammar (``100m``, ``1.5``, ``4Gi``, ``512M``, ``1e3``) is ``kits.quantity``'s; this
module owns what the provisioner adds to it: quantities from YAML numbers too, never negative,
errors that name the field, and the rounding rules the provisioner uses: CPU is kept in integer
millicores, everything else in integer base units (bytes, pods, GPUs). Arithmetic is exact
(``fractions.Fraction``); a value that is not a whole number of the target unit is rounded *up*,
as the API server does for requests, so a pod is never under-counted. This module must not know
which resource a field is beyond the unit it is asked for; callers pass the field path so errors
name it.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

from kits import parse_quantity as kits_parse_quantity
from provisioner.errors import QuantityError

__all__ = ["format_cpu", "format_quantity", "parse_quantity", "to_millis", "to_units"]

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def parse_quantity(value: object, *, field: str) -> Fraction:
    """Parse a quantity (string, or int/float from YAML) into an exact non-negative number.

    >>> parse_quantity("1.5Gi", field="memory")
    Fraction(1610612736, 1)
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise QuantityError(field, f"expected a quantity string or number, got {value!r}")
    text = value if isinstance(value, str) else repr(value)
    try:
        number = _exact(text)
    except ValueError as exc:
        raise QuantityError(field, str(exc)) from None
    if number < 0:
        raise QuantityError(field, f"{text!r} is negative")
    return number


@functools.lru_cache(maxsize=8192)
def _exact(text: str) -> Fraction:
    """kits' parse, remembered: the pods of one template repeat the same few strings, and a
    disruption pass parses every bound pod (a ValueError is not remembered)."""
    return kits_parse_quantity(text)


@functools.lru_cache(maxsize=8192)
def _whole(number: Fraction, scale: int) -> int:
    return math.ceil(number * scale)


def to_millis(value: object, *, field: str) -> int:
    """Parse a CPU-like quantity into integer millis, rounding up (``1.0001`` -> 1001)."""
    return _whole(parse_quantity(value, field=field), 1000)


def to_units(value: object, *, field: str) -> int:
    """Parse a quantity into whole base units (bytes, pods, GPUs), rounding up."""
    return _whole(parse_quantity(value, field=field), 1)


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
