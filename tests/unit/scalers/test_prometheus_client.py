"""One decoder for both Prometheus callers: the scaler and the custom-metrics provider get the
same error, with the same reason, for the same answer."""

from __future__ import annotations

import orjson
import pytest

from adapter.prometheus_custom import unavailable
from scalers import AuthError, BadResponseError, BadResultError, UpstreamError
from scalers.prometheus import read_result
from scalers.prometheus_client import PrometheusAuth, decode_answer, instant_samples, range_series

WHAT = "q"
WHERE = "Prometheus at http://p:9090"
PROMETHEUS_ERROR = orjson.dumps(
    {"status": "error", "errorType": "bad_data", "error": "parse error at char 4"}
)


def answer(kind: str, result: object) -> bytes:
    return orjson.dumps({"status": "success", "data": {"resultType": kind, "result": result}})


def custom_path(status: int, body: bytes) -> None:
    """What the custom-metrics provider does with an /api/v1/query answer."""
    instant_samples(decode_answer(status, body, what=WHAT), what=WHAT)


def scaler_path(status: int, body: bytes) -> None:
    read_result(status, body, what=WHAT, ignore_null_values=True)


@pytest.mark.parametrize(
    ("status", "body", "error", "reason"),
    [
        (400, PROMETHEUS_ERROR, BadResponseError, "HTTP 400: bad_data: parse error at char 4"),
        (422, PROMETHEUS_ERROR, BadResponseError, "HTTP 422: bad_data: parse error at char 4"),
        (502, b"upstream connect error", BadResponseError, "HTTP 502: upstream connect error"),
        (401, b"Unauthorized", AuthError, "HTTP 401: Unauthorized"),
        (403, b"", AuthError, "HTTP 403: "),
        (200, b"<html>", BadResponseError, "answer is not JSON"),
        (200, b'{"status":"success"}', BadResponseError, "answer has no data"),
        (200, PROMETHEUS_ERROR, BadResponseError, "answer has no data"),
        (
            200,
            b'{"status":"error","data":{},"errorType":"timeout","error":"slow"}',
            BadResponseError,
            "timeout: slow",
        ),
        (200, answer("vector", ["x"]), BadResponseError, "malformed vector element"),
        (
            200,
            answer("vector", [{"metric": {}, "value": [1.0, "many"]}]),
            BadResponseError,
            "sample value 'many' is not a number",
        ),
        (200, answer("matrix", []), BadResultError, "result type 'matrix'; expected "),
        (200, answer("string", [1.0, "s"]), BadResultError, "result type 'string'; expected "),
    ],
)
def test_both_callers_get_the_same_error(
    status: int, body: bytes, error: type[UpstreamError], reason: str
) -> None:
    caught: list[UpstreamError] = []
    for path in (scaler_path, custom_path):
        with pytest.raises(error) as raised:
            path(status, body)
        assert type(raised.value) is error
        assert raised.value.reason.startswith(reason)
        assert str(raised.value).startswith(f"{WHAT}: ")
        caught.append(raised.value)
    scaler, custom = caught
    if not isinstance(scaler, BadResultError):
        assert (str(scaler), scaler.reason) == (str(custom), custom.reason)
    if isinstance(scaler, BadResponseError) and isinstance(custom, BadResponseError):
        assert scaler.status == custom.status


def test_a_scalar_is_one_sample_only_where_asked_for() -> None:
    data = decode_answer(200, answer("scalar", [1.5, "7"]), what=WHAT)
    [sample] = instant_samples(data, what=WHAT, scalar=True)
    assert (dict(sample.labels), sample.at, sample.value) == ({}, 1.5, 7.0)
    with pytest.raises(BadResultError, match=r"expected an instant vector$"):
        instant_samples(data, what=WHAT)


def test_vector_samples_keep_labels_and_time() -> None:
    body = answer("vector", [{"metric": {"pod": "a"}, "value": [2.0, "NaN"]}])
    [sample] = instant_samples(decode_answer(200, body, what=WHAT), what=WHAT)
    assert (dict(sample.labels), sample.at) == ({"pod": "a"}, 2.0)
    assert sample.value != sample.value  # NaN: the caller decides what it means


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            BadResponseError("q: HTTP 400: x", status=400, reason="HTTP 400: x"),
            f"q: {WHERE} answered HTTP 400: x",
        ),
        (
            AuthError("q: credentials refused: HTTP 401: no", status=401, reason="HTTP 401: no"),
            f"q: {WHERE} refused our credentials: HTTP 401: no",
        ),
        (BadResponseError("q: answer is not JSON", reason="answer is not JSON"), None),
    ],
)
def test_the_adapter_phrases_the_reason_with_its_server(
    error: UpstreamError, message: str | None
) -> None:
    phrased = unavailable(error, what=WHAT, where=WHERE).message
    assert phrased == (message or f"q: {WHERE} answered: {error.reason}")


def test_auth_headers_in_keda_order_and_never_shown() -> None:
    auth = PrometheusAuth.build(bearer_token="tok", custom=("X-Key", "k"), unsafe_ssl=True)
    assert auth.headers == (("Authorization", "Bearer tok"), ("X-Key", "k"))
    assert "tok" not in repr(auth)
    assert "k" not in repr(auth).replace("unsafe_ssl", "").replace("redacted", "")
    basic = PrometheusAuth.build(basic=("me", "pw"))
    assert basic.headers == (("Authorization", "Basic bWU6cHc="),)


def test_a_range_answer_is_its_series_and_anything_else_a_bad_result() -> None:
    data = {
        "resultType": "matrix",
        "result": [{"metric": {"pod": "a"}, "values": [[60, "0.5"], [120.5, "NaN"]]}],
    }
    (series,) = range_series(data, what=WHAT)
    assert series.labels == {"pod": "a"}
    assert series.points[0] == (60.0, 0.5)
    assert series.points[1][0] == 120.5
    with pytest.raises(BadResultError, match="expected a range vector"):
        range_series({"resultType": "vector", "result": []}, what=WHAT)
    with pytest.raises(BadResponseError, match="malformed matrix element"):
        range_series({"resultType": "matrix", "result": [{"metric": {}}]}, what=WHAT)
