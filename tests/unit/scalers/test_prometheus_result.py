"""Reading an /api/v1/query answer: one number, or an error saying why not."""

from __future__ import annotations

import orjson
import pytest

from scalers import AuthError, BadResponseError, BadResultError
from scalers.prometheus import read_result

WHAT = "prometheus query 'q' at http://p:9090"


def answer(result_type: str, result: object) -> bytes:
    return orjson.dumps(
        {"status": "success", "data": {"resultType": result_type, "result": result}}
    )


def vector(*values: str) -> bytes:
    return answer(
        "vector", [{"metric": {"i": str(i)}, "value": [1.0, v]} for i, v in enumerate(values)]
    )


def read(body: bytes, *, status: int = 200, ignore_null_values: bool = True) -> float:
    return read_result(status, body, what=WHAT, ignore_null_values=ignore_null_values)


def test_one_series() -> None:
    assert read(vector("42.5")) == 42.5


def test_scalar() -> None:
    assert read(answer("scalar", [1.0, "7"])) == 7.0


@pytest.mark.parametrize("body", [vector(), vector("NaN"), vector("+Inf"), vector("-Inf")])
def test_nulls_are_zero_when_ignored(body: bytes) -> None:
    assert read(body) == 0.0


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (vector(), "returned an empty vector (the target may be lost)"),
        (vector("NaN"), "returned nan"),
        (vector("+Inf"), "returned inf"),
        (answer("scalar", [1.0, "NaN"]), "returned nan"),
    ],
)
def test_nulls_are_errors_when_not_ignored(body: bytes, why: str) -> None:
    with pytest.raises(BadResultError) as caught:
        read(body, ignore_null_values=False)
    assert str(caught.value) == f"{WHAT}: {why} and ignoreNullValues is false"


def test_several_series_are_an_error_whatever_ignore_null_values() -> None:
    with pytest.raises(BadResultError) as caught:
        read(vector("1", "2", "3"))
    assert str(caught.value) == (
        f"{WHAT}: returned 3 series; expected exactly one (aggregate it, e.g. with sum())"
    )


@pytest.mark.parametrize("kind", ["matrix", "string"])
def test_other_result_types_are_errors(kind: str) -> None:
    with pytest.raises(BadResultError, match=f"result type '{kind}'"):
        read(answer(kind, []))


def test_non_2xx_carries_prometheus_message() -> None:
    body = orjson.dumps(
        {
            "status": "error",
            "errorType": "bad_data",
            "error": 'parse error at char 4: unexpected "}"',
        }
    )
    with pytest.raises(BadResponseError) as caught:
        read(body, status=400)
    assert caught.value.status == 400
    assert (
        str(caught.value) == f'{WHAT}: HTTP 400: bad_data: parse error at char 4: unexpected "}}"'
    )
    assert not isinstance(caught.value, AuthError)


def test_non_json_error_body_is_quoted() -> None:
    with pytest.raises(BadResponseError) as caught:
        read(b"upstream connect error", status=502)
    assert str(caught.value) == f"{WHAT}: HTTP 502: upstream connect error"


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials(status: int) -> None:
    with pytest.raises(AuthError) as caught:
        read(b"Unauthorized", status=status)
    assert caught.value.status == status


@pytest.mark.parametrize(
    "body",
    [
        b"<html>",
        b"[]",
        b'{"status":"success"}',
        b'{"status":"error","data":{},"error":"boom"}',
        answer("vector", [{"metric": {}}]),
        answer("vector", [{"metric": {}, "value": [1.0, "many"]}]),
        answer("vector", ["x"]),
        answer("scalar", [1.0]),
    ],
)
def test_malformed_answers(body: bytes) -> None:
    with pytest.raises(BadResponseError):
        read(body)
