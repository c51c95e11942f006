"""The one error tree of ``scalers``; every error a scaler or the cache raises is in it.

::

    ScalerError                   anything this package raises on purpose
    ├── ConfigError               a trigger's metadata/auth is wrong (key, value, expected)
    └── UpstreamError             the system we measure failed us
        ├── UnavailableError      unreachable, timed out, or no value within the deadline
        ├── BadResponseError      a non-2xx answer or a body we cannot decode
        │   └── AuthError         the upstream refused our credentials (401/403)
        └── BadResultError        a well-formed answer that is not one number
                                  (empty, NaN/Inf, several series, a range vector)

Front doors map them: ``ConfigError`` is the caller's fault (HTTP 400, gRPC INVALID_ARGUMENT);
``UpstreamError`` is ours to report (HTTP 503, gRPC UNAVAILABLE). Messages never carry auth
values: ``ConfigError`` takes the value already redacted when the key is a secret.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BadResponseError",
    "BadResultError",
    "ConfigError",
    "ScalerError",
    "UnavailableError",
    "UpstreamError",
]

REDACTED = "<redacted>"


class ScalerError(Exception):
    """Base of every error raised on purpose by ``scalers``."""


class ConfigError(ScalerError):
    """A trigger key has a missing, unknown or unparsable value.

    ``key`` is the metadata/auth key (``"type"`` for an unknown scaler type), ``value`` what was
    given (``None`` when missing, ``"<redacted>"`` for auth values), ``expected`` a phrase that
    completes "expected ...". ``in_auth`` says the key belongs in the auth map (a Secret), not
    the metadata, so a front door names the right field even when the key is missing.
    """

    def __init__(
        self, key: str, value: str | None, expected: str, *, in_auth: bool = False
    ) -> None:
        self.key = key
        self.value = value
        self.expected = expected
        self.in_auth = in_auth
        given = "missing" if value is None else f"got {value!r}"
        super().__init__(f"{key}: {given}, expected {expected}")


class UpstreamError(ScalerError):
    """The upstream (Prometheus, a queue, ...) did not give us a usable number.

    ``reason`` is the message without its leading "what failed: ", for a front door that
    phrases its own message; it defaults to the whole message.
    """

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        self.reason = reason if reason is not None else message
        super().__init__(message)


class UnavailableError(UpstreamError):
    """The upstream could not be reached or did not answer in time."""


class BadResponseError(UpstreamError):
    """The upstream answered with an error status or a body we cannot decode."""

    def __init__(
        self, message: str, *, status: int | None = None, reason: str | None = None
    ) -> None:
        self.status = status
        super().__init__(message, reason=reason)


class AuthError(BadResponseError):
    """The upstream refused our credentials (HTTP 401/403)."""


class BadResultError(UpstreamError):
    """The upstream answered, but the answer is not exactly one finite number."""
