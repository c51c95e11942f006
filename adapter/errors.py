"""Every error the metrics adapter raises on purpose, as one tree.

Owns the error classes and the facts each one carries to the wire: the HTTP code, the
`metav1.Status` reason and the optional `details` (name, group, kind). It must not build HTTP
responses (that is `status.py`) nor know about aiohttp.

    AdapterError                      500 InternalError: the base, never raised bare
    ├── BadRequestError               400 BadRequest
    │   ├── SelectorError             a label selector that does not parse or validate
    │   └── InvalidPathError          a request path of a shape no route serves
    ├── UnauthorizedError             401 Unauthorized: no identity could be established
    ├── ForbiddenError                403 Forbidden: the identity may not do this
    ├── NotFoundError                 404 NotFound: no route for the path
    │   └── MetricNotFoundError       the metric (or the object it describes) does not exist
    ├── MethodNotAllowedError         405 MethodNotAllowed: only GET is served
    ├── UnavailableError              503 ServiceUnavailable: upstream down, no fallback
    └── InternalError                 500 InternalError: a bug or a provider's bad value
        └── NonFiniteValueError       a provider returned NaN or an infinity

A provider behind the `ExternalMetrics` / `CustomMetrics` protocols signals "no such metric" by
raising `MetricNotFoundError` and "the upstream is down and no fallback applies" by raising
`UnavailableError`; anything else it raises becomes a 500 whose message hides the exception text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class Details:
    """`metav1.StatusDetails` fields we fill: what the error is about, where known."""

    name: str = ""
    group: str = ""
    kind: str = ""


class AdapterError(Exception):
    """Base of the tree. `code` and `reason` are what a `metav1.Status` body carries."""

    code: ClassVar[int] = 500
    reason: ClassVar[str] = "InternalError"

    def __init__(self, message: str, *, details: Details | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequestError(AdapterError):
    code = 400
    reason = "BadRequest"


class SelectorError(BadRequestError):
    """A label selector that does not parse. `position` is the 0-based character offset of
    `token` in the selector text; `expected` says what would have been accepted there."""

    def __init__(self, *, selector: str, token: str, position: int, expected: str) -> None:
        shown = repr(token) if token else "end of input"
        super().__init__(
            f"unable to parse label selector {selector!r}: at position {position} found "
            f"{shown}, expected {expected}"
        )
        self.selector = selector
        self.token = token
        self.position = position
        self.expected = expected


class InvalidPathError(BadRequestError):
    """A path under a served group-version that has no meaning there."""


class UnauthorizedError(AdapterError):
    code = 401
    reason = "Unauthorized"

    def __init__(self, message: str = "Unauthorized", *, details: Details | None = None) -> None:
        super().__init__(message, details=details)


class ForbiddenError(AdapterError):
    code = 403
    reason = "Forbidden"


class NotFoundError(AdapterError):
    code = 404
    reason = "NotFound"

    def __init__(
        self,
        message: str = "the server could not find the requested resource",
        *,
        details: Details | None = None,
    ) -> None:
        super().__init__(message, details=details)


class MetricNotFoundError(NotFoundError):
    """The metric a client asked for does not exist (for that object, if one was named)."""

    def __init__(self, metric: str, *, group: str, kind: str = "", described: str = "") -> None:
        where = f" for {described}" if described else ""
        super().__init__(
            f"the server could not find the metric {metric}{where}",
            details=Details(name=metric, group=group, kind=kind),
        )
        self.metric = metric


class MethodNotAllowedError(AdapterError):
    code = 405
    reason = "MethodNotAllowed"


class UnavailableError(AdapterError):
    code = 503
    reason = "ServiceUnavailable"


class InternalError(AdapterError):
    code = 500
    reason = "InternalError"


class NonFiniteValueError(InternalError):
    """A provider produced NaN or an infinity, which no Quantity can carry."""
