"""Errors of the Kubernetes layer.

KubeError
├── ConfigError          no usable kubeconfig or in-cluster credentials, or the apiserver
│                        refused them
├── UnreachableError     the apiserver did not answer within the start-up wait
├── InvalidObjectError   an object's field has the wrong shape; ``field`` names it (also a
│                        ValueError, as a torn watch line is)
└── ApiError             the apiserver answered with a failure status
    ├── GoneError        410: a watch's resourceVersion is too old; re-list
    ├── ConflictError    409: optimistic-concurrency loss (resourceVersion moved on)
    └── NotFoundError    404
"""

from __future__ import annotations

from typing import Any


class KubeError(Exception):
    """Base of every error this package raises."""


class ConfigError(KubeError):
    """Neither the given kubeconfig nor in-cluster credentials could be loaded."""


class UnreachableError(KubeError):
    """The apiserver did not answer (connection refused, timeouts, 5xx) within the wait."""


class InvalidObjectError(KubeError, ValueError):
    """A field of an object does not have the shape Kubernetes gives it; ``field`` is its path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ApiError(KubeError):
    """The apiserver answered with a failure `metav1.Status`."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message

    @classmethod
    def from_status(cls, code: int, status: Any) -> ApiError:
        """Build the most specific error for an HTTP code and a (possibly absent) Status."""
        reason = message = ""
        if isinstance(status, dict):
            reason = str(status.get("reason", ""))
            message = str(status.get("message", ""))
        kind = {410: GoneError, 409: ConflictError, 404: NotFoundError}.get(code, ApiError)
        return kind(code, reason, message)


class GoneError(ApiError):
    """410: the requested resourceVersion has been compacted away."""


class ConflictError(ApiError):
    """409: someone else changed the object first."""


class NotFoundError(ApiError):
    """404: no such object."""
