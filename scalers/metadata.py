"""Typed reads of trigger metadata and auth maps, each failure a ``ConfigError`` naming the key.

A ``MetadataReader`` wraps one ``dict[str, str]`` and remembers which keys were read; after a
scaler has read everything it understands, ``reject_unknown()`` fails on the first key nobody
read, unless the caller asked to ``ignore`` it (front doors pass the generic keys KEDA puts in
an external trigger's metadata, see ``KEDA_EXTERNAL_KEYS``). Parsing follows KEDA (Go's
``strconv.ParseBool``/``ParseFloat``/``time.ParseDuration``) but is stricter where KEDA would
silently take a nonsense value. This module knows no scaler.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping

from kits import parse_duration
from scalers.errors import REDACTED, ConfigError

__all__ = ["KEDA_EXTERNAL_KEYS", "MetadataReader"]

KEDA_EXTERNAL_KEYS = frozenset({"scalerAddress", "enableTLS", "caCert", "tlsClientCert"})
"""Keys KEDA itself consumes from an ``external``/``external-push`` trigger's metadata and then
forwards to the external scaler with everything else (``unsafeSsl`` is absent on purpose: the
Prometheus scaler has a key of that name)."""

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_FLOAT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_INT = re.compile(r"[+-]?\d{1,18}")


class MetadataReader:
    """Reads typed values from one string map; see the module docstring.

    ``secret=True`` (auth maps) replaces every value shown in an error with ``<redacted>``.
    """

    def __init__(
        self,
        values: Mapping[str, str],
        *,
        secret: bool = False,
        ignore: Collection[str] = (),
    ) -> None:
        self._values = values
        self._secret = secret
        self._ignore = frozenset(ignore)
        self._read: set[str] = set()

    # -- plumbing -------------------------------------------------------------------------

    def _shown(self, value: str) -> str:
        return REDACTED if self._secret else value

    def error(self, key: str, value: str | None, expected: str) -> ConfigError:
        """A ``ConfigError`` for ``key``, redacting ``value`` if this map is secret."""
        shown = None if value is None else self._shown(value)
        return ConfigError(key, shown, expected, in_auth=self._secret)

    def raw(self, key: str) -> str | None:
        """The value of ``key``, ``None`` when absent or empty (KEDA treats both as unset)."""
        self._read.add(key)
        value = self._values.get(key)
        return value if value else None

    def has(self, key: str) -> bool:
        return self.raw(key) is not None

    # -- typed reads ----------------------------------------------------------------------

    def required_str(self, key: str, *, expected: str = "a non-empty string") -> str:
        value = self.raw(key)
        if value is None:
            raise self.error(key, self._values.get(key), expected)
        return value

    def optional_str(self, key: str) -> str | None:
        return self.raw(key)

    def float_(
        self,
        key: str,
        *,
        default: float | None = None,
        positive: bool = False,
    ) -> float:
        """A finite decimal number; ``default=None`` makes the key required."""
        expected = "a positive number" if positive else "a finite number"
        value = self.raw(key)
        if value is None:
            if default is None:
                raise self.error(key, self._values.get(key), expected)
            return default
        text = value.strip()
        if not _FLOAT.fullmatch(text):
            raise self.error(key, value, expected)
        number = float(text)
        if not math.isfinite(number) or (positive and number <= 0):
            raise self.error(key, value, expected)
        return number

    def int_(self, key: str, *, default: int | None = None, minimum: int | None = None) -> int:
        """A decimal integer, at least ``minimum``; ``default=None`` makes the key required."""
        if minimum == 1:
            expected = "a positive integer"
        elif minimum is not None:
            expected = f"an integer >= {minimum}"
        else:
            expected = "an integer"
        value = self.raw(key)
        if value is None:
            if default is None:
                raise self.error(key, self._values.get(key), expected)
            return default
        text = value.strip()
        if not _INT.fullmatch(text):
            raise self.error(key, value, expected)
        number = int(text)
        if minimum is not None and number < minimum:
            raise self.error(key, value, expected)
        return number

    def bool_(self, key: str, *, default: bool) -> bool:
        """Go's ``strconv.ParseBool`` spellings: 1/0, t/f, true/false in three casings."""
        value = self.raw(key)
        if value is None:
            return default
        text = value.strip()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise self.error(key, value, "a boolean (true or false)")

    def duration(self, key: str, *, default: float) -> float:
        """Seconds from a Go duration (``"3s"``, ``"1m30s"``, ``"500ms"``) or bare milliseconds."""
        expected = "a positive duration such as 3s, 500ms or 1m30s (bare numbers are milliseconds)"
        value = self.raw(key)
        if value is None:
            return default
        text = value.strip()
        if _FLOAT.fullmatch(text) and "e" not in text.lower() and not text.startswith("+"):
            seconds = float(text) / 1000.0
        else:
            try:
                seconds = parse_duration(text)
            except ValueError:
                raise self.error(key, value, expected) from None
        if not math.isfinite(seconds) or seconds <= 0:
            raise self.error(key, value, expected)
        return seconds

    def pairs(self, key: str) -> tuple[tuple[str, str], ...]:
        """``k1=v1,k2=v2`` as ordered pairs; spaces around keys and values are dropped."""
        value = self.raw(key)
        if value is None:
            return ()
        result: list[tuple[str, str]] = []
        for item in value.split(","):
            name, sep, val = item.partition("=")
            name = name.strip()
            if not sep or not name:
                raise self.error(key, value, "comma-separated key=value pairs (k1=v1,k2=v2)")
            result.append((name, val.strip()))
        return tuple(result)

    def choices(self, key: str, allowed: Collection[str]) -> tuple[str, ...]:
        """A comma-separated list whose items are all in ``allowed``."""
        value = self.raw(key)
        if value is None:
            return ()
        items = tuple(item.strip() for item in value.split(",") if item.strip())
        for item in items:
            if item not in allowed:
                listed = ", ".join(sorted(allowed))
                raise self.error(key, value, f"a comma-separated list of: {listed}")
        return items

    def unsupported(self, key: str, why: str) -> None:
        """Reject ``key`` if it is set: KEDA knows it, we deliberately do not."""
        value = self.raw(key)
        if value is not None:
            raise self.error(key, value, f"{key} to be unset ({why})")

    def reject_unknown(self, *, known: Collection[str] = ()) -> None:
        """Fail on the first (sorted) key that was neither read, ``known`` nor ignored."""
        for key in sorted(self._values):
            if key in self._read or key in known or key in self._ignore:
                continue
            listed = ", ".join(sorted(self._read | set(known))) or "none"
            raise self.error(key, self._values[key], f"a known key (one of: {listed})")
