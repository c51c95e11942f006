"""``PrometheusClient``: the one way Updraft talks to Prometheus's HTTP API.

Used by the ``prometheus`` scaler (one number per trigger), by the adapter's custom-metrics
provider (discovery through ``/api/v1/series`` and a vector per request) and by ``updraft
recommend`` (usage history through range queries). It owns the request
(auth headers, custom headers, TLS through the shared ``SessionPool``, a total timeout) and the
decoding of every answer into data or into the ``scalers`` error tree, once for both callers:

- no answer in time, or no connection: ``UnavailableError``;
- HTTP 401/403: ``AuthError``; any other non-2xx, a body that is not JSON, or a Prometheus
  ``"status": "error"`` document: ``BadResponseError`` carrying Prometheus's ``errorType:
  error`` text;
- a result that is not what an instant query may return: ``BadResultError``.

Every message starts with the caller's ``what`` and never holds a credential; ``reason`` on the
error is the detail alone (``HTTP 400: bad_data: ...``, the connection error), for callers that
phrase their own message. What a
caller makes of the samples (one number, NaN as 0, ...) is the caller's.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from yarl import URL

from scalers.errors import AuthError, BadResponseError, BadResultError, UnavailableError
from scalers.sessions import SessionLease, SessionPool, TlsMaterial

__all__ = [
    "PrometheusAuth",
    "PrometheusClient",
    "RangeSeries",
    "Sample",
    "decode_answer",
    "instant_samples",
    "range_series",
]

_ERROR_TEXT_MAX = 300


@dataclass(frozen=True, slots=True, repr=False)
class PrometheusAuth:
    """How to prove who we are to one Prometheus: headers that carry credentials (never shown),
    TLS material (CA, client certificate) and whether to skip server verification."""

    headers: tuple[tuple[str, str], ...] = ()
    tls: TlsMaterial = field(default_factory=TlsMaterial)
    unsafe_ssl: bool = False

    @classmethod
    def build(
        cls,
        *,
        bearer_token: str | None = None,
        basic: tuple[str, str] | None = None,
        custom: tuple[str, str] | None = None,
        tls: TlsMaterial | None = None,
        unsafe_ssl: bool = False,
    ) -> PrometheusAuth:
        """The auth modes KEDA's Prometheus scaler has: bearer or basic (not both, the caller
        checks), a custom header and value, TLS; in that header order."""
        headers: list[tuple[str, str]] = []
        if bearer_token is not None:
            headers.append(("Authorization", f"Bearer {bearer_token}"))
        if basic is not None:
            token = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode("ascii")
            headers.append(("Authorization", f"Basic {token}"))
        if custom is not None:
            headers.append(custom)
        return cls(headers=tuple(headers), tls=tls or TlsMaterial(), unsafe_ssl=unsafe_ssl)

    def __repr__(self) -> str:
        return (
            f"PrometheusAuth(<{len(self.headers)} headers redacted>, unsafe_ssl={self.unsafe_ssl})"
        )


@dataclass(frozen=True, slots=True)
class Sample:
    """One element of an instant result: a scalar has no labels."""

    labels: Mapping[str, str]
    at: float
    """Unix seconds of the evaluation."""
    value: float


@dataclass(frozen=True, slots=True)
class RangeSeries:
    """One series of a range query's matrix: its labels and its (Unix seconds, value) points
    in time order."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


def _error_text(body: bytes) -> str:
    """Prometheus's ``errorType: error`` when the body is its error JSON, else the body's start."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None
    if isinstance(document, dict) and document.get("error") is not None:
        kind = document.get("errorType")
        text = f"{kind}: {document['error']}" if kind else str(document["error"])
        return text[:_ERROR_TEXT_MAX]
    return body[:_ERROR_TEXT_MAX].decode("utf-8", "replace").strip()


def decode_answer(status: int, body: bytes, *, what: str) -> Any:
    """``data`` of a successful Prometheus API answer; the ``scalers`` error for any other."""
    if status in (401, 403):
        reason = f"HTTP {status}: {_error_text(body)}"
        raise AuthError(f"{what}: credentials refused: {reason}", status=status, reason=reason)
    if not 200 <= status < 300:
        reason = f"HTTP {status}: {_error_text(body)}"
        raise BadResponseError(f"{what}: {reason}", status=status, reason=reason)
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _bad(what, "answer is not JSON", status) from None
    if not isinstance(document, dict) or document.get("data") is None:
        raise _bad(what, "answer has no data", status)
    if document.get("status", "success") != "success":
        raise _bad(what, _error_text(body), status)
    return document["data"]


def _bad(what: str, reason: str, status: int | None = None) -> BadResponseError:
    return BadResponseError(f"{what}: {reason}", status=status, reason=reason)


def _pair(pair: Any, what: str) -> tuple[float, float]:
    if not (
        isinstance(pair, list)
        and len(pair) == 2
        and isinstance(pair[0], int | float)
        and isinstance(pair[1], str)
    ):
        raise _bad(what, f"malformed sample {str(pair)[:80]!r}")
    try:
        return float(pair[0]), float(pair[1])
    except ValueError:
        raise _bad(what, f"sample value {pair[1][:40]!r} is not a number") from None


def _element(element: Any, what: str) -> Sample:
    labels = element.get("metric", {}) if isinstance(element, dict) else None
    if not isinstance(labels, dict):
        raise _bad(what, "malformed vector element")
    at, value = _pair(element.get("value"), what)
    return Sample(labels={str(k): str(v) for k, v in labels.items()}, at=at, value=value)


def instant_samples(data: Any, *, what: str, scalar: bool = False) -> list[Sample]:
    """The samples of an instant query's ``data``: a vector's, or (when ``scalar``) a scalar's
    one. Any other result type is a ``BadResultError`` that says what was expected."""
    if not isinstance(data, dict):
        raise _bad(what, "answer has no data")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and scalar:
        at, value = _pair(result, what)
        return [Sample(labels={}, at=at, value=value)]
    if kind == "vector" and isinstance(result, list):
        return [_element(element, what) for element in result]
    expected = "an instant vector or a scalar" if scalar else "an instant vector"
    reason = f"result type {kind!r}; expected {expected}"
    raise BadResultError(f"{what}: {reason}", reason=reason)


def range_series(data: Any, *, what: str) -> list[RangeSeries]:
    """The series of a range query's ``data`` (a matrix); any other result type is a
    ``BadResultError``."""
    if not isinstance(data, dict):
        raise _bad(what, "answer has no data")
    kind, result = data.get("resultType"), data.get("result")
    if kind != "matrix" or not isinstance(result, list):
        reason = f"result type {kind!r}; expected a range vector (matrix)"
        raise BadResultError(f"{what}: {reason}", reason=reason)
    out = []
    for element in result:
        labels = element.get("metric", {}) if isinstance(element, dict) else None
        values = element.get("values") if isinstance(element, dict) else None
        if not isinstance(labels, dict) or not isinstance(values, list):
            raise _bad(what, "malformed matrix element")
        out.append(
            RangeSeries(
                labels={str(k): str(v) for k, v in labels.items()},
                points=tuple(_pair(pair, what) for pair in values),
            )
        )
    return out


class PrometheusClient:
    """Queries one Prometheus (``url`` may carry a path prefix) through a pooled session.

    ``headers`` are plain extra headers (``X-Scope-OrgID``); credentials go in ``auth``. The
    session is leased on the first call; ``close()`` releases it. Opening the session may raise
    ``ssl.SSLError``/``ValueError`` for TLS material that does not load.
    """

    def __init__(
        self,
        url: URL | str,
        *,
        sessions: SessionPool,
        auth: PrometheusAuth | None = None,
        headers: Sequence[tuple[str, str]] = (),
        timeout: float,
    ) -> None:
        self._url = URL(str(url))
        self._base = str(self._url).rstrip("/")
        self._sessions = sessions
        self._auth = auth or PrometheusAuth()
        self._headers = tuple(headers) + self._auth.headers
        self.timeout = timeout
        self._lease: SessionLease | None = None
        self._closed = False

    @property
    def origin(self) -> str:
        return str(self._url.origin())

    def session(self) -> aiohttp.ClientSession:
        """The pooled session, leased now if it was not (a TLS failure raises here)."""
        if self._closed:
            raise RuntimeError("PrometheusClient is closed")
        if self._lease is None:
            self._lease = self._sessions.lease(
                origin=self.origin, unsafe_ssl=self._auth.unsafe_ssl, tls=self._auth.tls
            )
        return self._lease.session

    async def get(self, path: str, params: Sequence[tuple[str, str]], *, what: str) -> Any:
        """``data`` of ``GET {url}{path}``; the ``scalers`` error tree otherwise."""
        session = self.session()
        try:
            async with session.get(
                self._base + path,
                params=list(params),
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                status = response.status
                body = await response.read()
        except TimeoutError:
            reason = f"no answer within {self.timeout:g}s"
            raise UnavailableError(f"{what}: {reason}", reason=reason) from None
        except aiohttp.ClientResponseError as error:
            # Its request_info holds our headers; keep only the status.
            reason = f"HTTP error {error.status}"
            raise UnavailableError(f"{what}: {reason}", reason=reason) from None
        except (aiohttp.ClientError, OSError) as error:
            raise UnavailableError(f"{what}: unreachable ({error})", reason=str(error)) from None
        return decode_answer(status, body, what=what)

    async def query(
        self,
        query: str,
        *,
        what: str,
        params: Sequence[tuple[str, str]] = (),
        scalar: bool = False,
    ) -> list[Sample]:
        """An instant query (evaluated at Prometheus's now): its samples."""
        data = await self.get("/api/v1/query", [("query", query), *params], what=what)
        return instant_samples(data, what=what, scalar=scalar)

    async def query_range(
        self, query: str, *, start: float, end: float, step: float, what: str
    ) -> list[RangeSeries]:
        """A range query evaluated at ``start``, ``start + step``, ... up to ``end`` (Unix
        seconds): its series. Prometheus refuses more than 11,000 points per series; keeping
        under that is the caller's (chunk long ranges)."""
        params = [
            ("query", query),
            ("start", f"{start:.3f}"),
            ("end", f"{end:.3f}"),
            ("step", f"{step:g}"),
        ]
        data = await self.get("/api/v1/query_range", params, what=what)
        return range_series(data, what=what)

    async def series(self, match: str, *, start: float, what: str) -> list[Mapping[str, Any]]:
        """The label sets of the series ``match`` selects that have samples since ``start``."""
        data = await self.get(
            "/api/v1/series", [("match[]", match), ("start", f"{start:.3f}")], what=what
        )
        if not isinstance(data, list):
            raise _bad(what, "the answer holds no list of series")
        return [labels for labels in data if isinstance(labels, dict)]

    async def close(self) -> None:
        self._closed = True
        if self._lease is not None:
            lease, self._lease = self._lease, None
            await lease.release()
