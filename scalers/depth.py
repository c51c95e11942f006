"""``DepthScaler``: what every queue-depth scaler shares, so each backend writes only its query.

A depth scaler leases one pooled client (``clients.ClientPool``) on its first ``measure()``,
bounds every call (opening included) by its ``timeout``, and turns the client library's
exceptions into the ``scalers`` error tree through the backend's ``translate()``: connection and
timeout failures become ``UnavailableError``, refused credentials ``AuthError``. Every message is
scrubbed of the trigger's secret values before it leaves, whatever a library put in it. Active is
``value > activation_target`` (strict), as in KEDA; target is AverageValue, so the HPA runs about
``ceil(depth / target)`` replicas.
"""

from __future__ import annotations

import asyncio
import math
import re
import urllib.parse
from abc import abstractmethod
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

from scalers.base import Measurement, Scaler, ScalerContext
from scalers.clients import ClientLease, client_pool
from scalers.errors import REDACTED, BadResultError, ScalerError, UnavailableError

__all__ = ["DEFAULT_TIMEOUT", "DepthScaler", "scrub", "scrub_values"]

ClientT = TypeVar("ClientT")

DEFAULT_TIMEOUT = 3.0
"""Seconds for one measurement, connecting included: the 3 s KEDA's metrics server gives a whole
external-scaler round trip (the same default as the Prometheus scaler)."""

_ERROR_TEXT_MAX = 300


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret in it replaced by ``<redacted>``, cut to a readable length."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text[:_ERROR_TEXT_MAX]


_VALUE_AFTER = r"([=:][ \t]*[\"']?)"
"""Where a credential stands as a value: after ``=`` (a query string, ``key=value``) or ``:``
(a header, JSON), maybe spaced and quoted."""
_VALUE_CONTINUES = r"(?![A-Za-z0-9+/=%_-])"
"""The value ends with the secret: a longer value that merely starts with it is another one."""


def scrub_values(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret replaced by ``<redacted>`` where it stands as a value (raw or
    URL-encoded), cut to a readable length. Other occurrences stay: a short credential such as
    ``sqs`` or ``eu`` must not blank out the words and names of the message around it."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        forms = {secret, urllib.parse.quote(secret, safe="")}
        alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
        pattern = re.compile(f"{_VALUE_AFTER}(?:{alternatives}){_VALUE_CONTINUES}")
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text[:_ERROR_TEXT_MAX]


class DepthScaler(Scaler, Generic[ClientT]):
    """A scaler that asks a pooled client for one number; subclasses supply the client and query.

    ``what`` names the measured thing and its server (never credentials) and starts every
    message; ``secrets`` are the values to scrub from messages.
    """

    discard_on_unavailable = True
    """Forget the pooled client after a connection failure (libraries that do not reconnect)."""

    @staticmethod
    def redact(text: str, secrets: Iterable[str]) -> str:
        """How messages lose the secrets: every occurrence (``scrub``), for backends whose
        libraries may echo a password anywhere; a backend may narrow it (``scrub_values``)."""
        return scrub(text, secrets)

    def __init__(
        self,
        *,
        context: ScalerContext,
        target: float,
        activation_target: float,
        metric_name: str,
        timeout: float,
        what: str,
        secrets: Iterable[str | None] = (),
    ) -> None:
        self._context = context
        self.target = target
        self.activation_target = activation_target
        self.metric_name = metric_name
        self.timeout = timeout
        self._what = what
        self._secrets = tuple(s for s in secrets if s)
        self._lease: ClientLease[ClientT] | None = None
        self._closed = False

    # -- what a backend supplies --------------------------------------------------------

    @abstractmethod
    def client_key(self) -> Hashable:
        """Equal for scalers that may share a client; no secret in the clear."""

    @abstractmethod
    async def open_client(self) -> ClientT:
        """Open the shared client; may connect lazily."""

    @abstractmethod
    async def close_client(self, client: ClientT) -> None:
        """Close what ``open_client`` opened."""

    @abstractmethod
    async def depth(self, client: ClientT) -> float:
        """Ask the upstream once; raise library errors freely (``translate`` maps them)."""

    @abstractmethod
    def translate(self, error: Exception) -> ScalerError | None:
        """The ``scalers`` error for a library ``error``, or ``None`` when this backend does not
        know it (then it propagates as a bug). Build messages with ``message()`` and
        ``library_text()``, which scrub secrets."""

    def is_active(self, value: float) -> bool:
        return value > self.activation_target

    # -- the shared part ----------------------------------------------------------------

    def message(self, text: str) -> str:
        """``what: text``, scrubbed of secrets."""
        return self.redact(f"{self._what}: {text}", self._secrets)

    def library_text(self, error: BaseException) -> str:
        """A library error's message (or its class name when it has none), scrubbed."""
        return self.redact(str(error) or type(error).__name__, self._secrets)

    async def _client(self) -> ClientT:
        if self._closed:
            raise RuntimeError("scaler is closed")
        if self._lease is None:
            self._lease = await client_pool(self._context).lease(
                self.client_key(), open_client=self.open_client, close_client=self.close_client
            )
        return self._lease.client

    async def measure(self) -> Measurement:
        try:
            async with asyncio.timeout(self.timeout):
                value = await self.depth(await self._client())
        except TimeoutError:
            await self._drop()
            raise UnavailableError(self.message(f"no answer within {self.timeout:g}s")) from None
        except ScalerError as error:
            if isinstance(error, UnavailableError):
                await self._drop()
            raise
        except Exception as error:
            translated = self.translate(error)
            if translated is None:
                raise
            if isinstance(translated, UnavailableError):
                await self._drop()
            raise translated from None
        if not math.isfinite(value):
            raise BadResultError(self.message(f"depth {value} is not a finite number"))
        return Measurement(value=value, active=self.is_active(value), at=self._context.clock.now())

    async def _drop(self) -> None:
        if self._lease is not None and self.discard_on_unavailable:
            lease, self._lease = self._lease, None
            await lease.discard()

    async def close(self) -> None:
        self._closed = True
        if self._lease is not None:
            lease, self._lease = self._lease, None
            await lease.release()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.metric_name}>"
