"""Every error is a metav1.Status body with the right code and reason."""

from __future__ import annotations

import pytest

from adapter import (
    AdapterError,
    BadRequestError,
    Details,
    ForbiddenError,
    InternalError,
    InvalidPathError,
    MethodNotAllowedError,
    MetricNotFoundError,
    NonFiniteValueError,
    NotFoundError,
    SelectorError,
    UnauthorizedError,
    UnavailableError,
    status_body,
)


@pytest.mark.parametrize(
    ("error", "code", "reason"),
    [
        (BadRequestError("x"), 400, "BadRequest"),
        (SelectorError(selector="a in", token="", position=4, expected="'('"), 400, "BadRequest"),
        (InvalidPathError("x"), 400, "BadRequest"),
        (UnauthorizedError(), 401, "Unauthorized"),
        (ForbiddenError("x"), 403, "Forbidden"),
        (NotFoundError(), 404, "NotFound"),
        (MetricNotFoundError("m", group="g"), 404, "NotFound"),
        (MethodNotAllowedError("x"), 405, "MethodNotAllowed"),
        (UnavailableError("x"), 503, "ServiceUnavailable"),
        (InternalError("x"), 500, "InternalError"),
        (NonFiniteValueError("x"), 500, "InternalError"),
    ],
)
def test_code_and_reason(error: AdapterError, code: int, reason: str) -> None:
    body = status_body(error)
    assert (body["code"], body["reason"]) == (code, reason)
    assert body["kind"] == "Status"
    assert body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    assert body["metadata"] == {}


def test_metric_not_found_names_the_metric_and_object() -> None:
    error = MetricNotFoundError(
        "rps", group="custom.metrics.k8s.io", kind="pods", described="pods web-1"
    )
    assert status_body(error) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server could not find the metric rps for pods web-1",
        "reason": "NotFound",
        "details": {"name": "rps", "group": "custom.metrics.k8s.io", "kind": "pods"},
        "code": 404,
    }


def test_details_appear_only_with_known_fields() -> None:
    assert "details" not in status_body(NotFoundError())
    assert "details" not in status_body(ForbiddenError("x", details=Details()))
    assert status_body(ForbiddenError("x", details=Details(group="g")))["details"] == {"group": "g"}


def test_unauthorized_says_so() -> None:
    assert status_body(UnauthorizedError())["message"] == "Unauthorized"
