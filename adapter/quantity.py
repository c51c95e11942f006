"""Metric values as Kubernetes `resource.Quantity` strings, rounded the way the HPA reads them.

Owns the adapter's rounding of a metric value (a float, int or Decimal from a scaler or a
provider) to whole millis, and its canonical string. The Quantity grammar itself (parsing, the
canonical DecimalSI form) is `kits.quantity`'s; this module must not know about metrics sources,
requests or HTTP.

How values are rounded: the HPA reads every value as `MilliValue()`, which rounds any fraction
of a milli *away from zero*. We round the same way to whole millis before formatting, so the
HPA computes the same milli value from our string as from the exact value, the output never
needs the `u`/`n` suffixes, and a tiny non-zero value (0.0004) never turns into "0" (which
would read as "idle" for scale-to-zero). A float is first taken at 15 significant digits
(the precision every float round-trips through), so 0.1 + 0.2 becomes `300m` and not `301m`;
`int`, `Decimal` and `Fraction` inputs are taken exactly. Powers above 10^18 print as
`e<power>`; the HPA cannot use such values anyway (its milli int64 overflows above about 9.2e15).
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

from adapter.errors import NonFiniteValueError
from kits import format_quantity

_FLOAT_EXACT_INTEGERS = 1e15
"""Below this an integral float has at most 15 digits, so it is already what the 15-digit rule
gives and needs no exact arithmetic at all."""


def metric_millis(value: float | int | Decimal | Fraction) -> int:
    """The whole number of millis the adapter reports for `value` (rounded away from zero)."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < _FLOAT_EXACT_INTEGERS:
            return int(value) * 1000  # the common case (counts, lengths), without Fraction
        if not math.isfinite(value):
            raise NonFiniteValueError(f"metric value {value!r} cannot be expressed as a Quantity")
        exact = Fraction(Decimal(f"{value:.15g}"))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise NonFiniteValueError(f"metric value {value!r} cannot be expressed as a Quantity")
        exact = Fraction(value)
    else:
        exact = Fraction(value)
    millis = exact * 1000
    # Away from zero: the ceiling of the magnitude, with the sign put back.
    return math.ceil(millis) if millis >= 0 else -math.ceil(-millis)


def format_metric_value(value: float | int | Decimal | Fraction) -> str:
    """The canonical Quantity string for `value`, rounded to the milli (see the module
    docstring). Raises `NonFiniteValueError` for NaN and infinities."""
    return format_quantity(Fraction(metric_millis(value), 1000))
