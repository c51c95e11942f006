"""`metav1.Status` bodies: how every adapter error looks on the wire.

Owns the translation of an `AdapterError` into the Status JSON document and its HTTP code. It
must not decide which error applies (handlers and middlewares do) and must not touch aiohttp.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

from adapter.errors import AdapterError


class StatusDetails(TypedDict, total=False):
    name: str
    group: str
    kind: str


class StatusBody(TypedDict):
    """`metav1.Status` as the Go apiserver writes it for a failure."""

    kind: Literal["Status"]
    apiVersion: Literal["v1"]
    metadata: dict[str, str]
    status: Literal["Failure"]
    message: str
    reason: str
    details: NotRequired[StatusDetails]
    code: int


def status_body(error: AdapterError) -> StatusBody:
    """The Status document for `error`. `details` appears only when something is known, and
    then only with the fields that are known (Go's StatusDetails fields are all omitempty)."""
    body: StatusBody = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": error.message,
        "reason": error.reason,
        "code": error.code,
    }
    if error.details is not None:
        details: StatusDetails = {}
        if error.details.name:
            details["name"] = error.details.name
        if error.details.group:
            details["group"] = error.details.group
        if error.details.kind:
            details["kind"] = error.details.kind
        if details:
            body["details"] = details
    return body
