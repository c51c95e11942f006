"""The ``nats-jetstream`` scaler: a JetStream consumer's lag, ``num_pending + num_ack_pending``.

Keys and defaults follow KEDA's NATS JetStream scaler: ``natsServerMonitoringEndpoint``
(``host:port`` of the server's HTTP monitoring port), ``useHttps`` (false), ``account`` (or
``accountID``), ``stream``, ``consumer``, ``lagThreshold`` (target, 10) and
``activationLagThreshold`` (0). The lag is read from ``/jsz?acc=...&consumers=true`` through the
shared aiohttp ``SessionPool``; a missing stream or consumer is an error that names it.

As an alternative to the monitoring endpoint (which has no authentication), Updraft also takes
``natsServerAddress`` (a ``nats://`` or ``tls://`` URL, not a KEDA key) with ``username`` and
``password`` or ``token`` in auth: the lag then comes from the JetStream API's consumer info over
a pooled nats-py connection, in whichever account the credentials belong to. Clustered servers
are asked as they are: the monitoring path does not look for the consumer's leader.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Hashable
from dataclasses import dataclass
from typing import Any

import aiohttp
import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client as NatsClient
from yarl import URL

from scalers.base import ConfiguredScaler, ScalerContext, dns_safe_name
from scalers.clients import secret_digest
from scalers.depth import DEFAULT_TIMEOUT, DepthScaler
from scalers.errors import (
    AuthError,
    BadResponseError,
    BadResultError,
    ScalerError,
    UnavailableError,
)
from scalers.metadata import MetadataReader
from scalers.sessions import SessionLease
from scalers.spec import TriggerSpec

__all__ = ["NatsJetStreamConfig", "NatsJetStreamScaler", "consumer_lag"]

_MONITORING = "natsServerMonitoringEndpoint"
_ADDRESS = "natsServerAddress"


@dataclass(frozen=True, slots=True, repr=False)
class NatsJetStreamConfig:
    stream: str
    consumer: str
    lag_threshold: int = 10
    activation_lag_threshold: int = 0
    monitoring_url: str | None = None
    """``http(s)://host:port``: read ``/jsz`` (KEDA's way)."""
    account: str | None = None
    server_address: str | None = None
    """``nats://host:port``: ask the JetStream API over a client connection."""
    username: str | None = None
    password: str | None = None
    token: str | None = None

    def __repr__(self) -> str:
        where = self.monitoring_url or self.server_address
        return f"NatsJetStreamConfig({where!r}, stream={self.stream!r}, consumer={self.consumer!r})"

    @classmethod
    def parse(cls, spec: TriggerSpec, *, ignore: Collection[str] = ()) -> NatsJetStreamConfig:
        meta = MetadataReader(spec.metadata, ignore=ignore)
        auth = MetadataReader(spec.auth, secret=True)
        stream = meta.required_str("stream", expected="a JetStream stream name")
        consumer = meta.required_str("consumer", expected="a JetStream consumer name")
        threshold = meta.int_("lagThreshold", default=10, minimum=1)
        activation = meta.int_("activationLagThreshold", default=0, minimum=0)
        use_https = meta.bool_("useHttps", default=False)
        monitoring = meta.optional_str(_MONITORING)
        address = meta.optional_str(_ADDRESS)
        account = meta.optional_str("account") or meta.optional_str("accountID")
        meta.unsupported("metricName", "removed in KEDA 2.12; names are generated")
        if (monitoring is None) == (address is None):
            raise meta.error(
                _MONITORING,
                monitoring,
                f"host:port of the monitoring endpoint, or {_ADDRESS} (exactly one of them)",
            )
        monitoring_url = None
        if monitoring is not None:
            if "://" in monitoring or "/" in monitoring:
                raise meta.error(_MONITORING, monitoring, "host:port, without scheme or path")
            monitoring_url = f"{'https' if use_https else 'http'}://{monitoring}"
            if account is None:
                raise meta.error("account", None, "the account name or ID ($G without accounts)")
            if not _valid_url(monitoring_url):
                raise meta.error(_MONITORING, monitoring, "host:port")
        elif address is not None and (
            not _valid_url(address) or URL(address).scheme not in ("nats", "tls")
        ):
            raise meta.error(_ADDRESS, address, "a nats:// or tls:// URL with host and port")
        username = auth.optional_str("username")
        password = auth.optional_str("password")
        token = auth.optional_str("token")
        if monitoring is not None:
            for key in ("username", "password", "token"):
                auth.unsupported(key, f"the monitoring endpoint takes none; use {_ADDRESS}")
        meta.reject_unknown()
        auth.reject_unknown()
        return cls(
            stream=stream,
            consumer=consumer,
            lag_threshold=threshold,
            activation_lag_threshold=activation,
            monitoring_url=monitoring_url,
            account=account,
            server_address=address,
            username=username,
            password=password,
            token=token,
        )


def _valid_url(text: str) -> bool:
    try:
        url = URL(text)
        return bool(url.host) and url.explicit_port is not None
    except (ValueError, TypeError):
        return False


def consumer_lag(document: Any, *, account: str, stream: str, consumer: str) -> float | str:
    """The consumer's lag in a ``/jsz`` answer, or a phrase saying what is missing."""
    if not isinstance(document, dict):
        return "answer is not a JSON object"
    for details in document.get("account_details") or ():
        if not isinstance(details, dict) or account not in (details.get("name"), details.get("id")):
            continue
        for found in details.get("stream_detail") or ():
            if not isinstance(found, dict) or found.get("name") != stream:
                continue
            for entry in found.get("consumer_detail") or ():
                if isinstance(entry, dict) and entry.get("name") == consumer:
                    pending = entry.get("num_pending", 0)
                    unacked = entry.get("num_ack_pending", 0)
                    if not (isinstance(pending, int) and isinstance(unacked, int)):
                        return "consumer counts are not numbers"
                    return float(pending + unacked)
            return f"consumer {consumer!r} not found in stream {stream!r}"
        return f"stream {stream!r} not found in account {account!r}"
    return f"account {account!r} not found (or it has no JetStream streams)"


_Client = SessionLease | NatsClient


class NatsJetStreamScaler(DepthScaler[_Client], ConfiguredScaler[NatsJetStreamConfig]):
    type_name = "nats-jetstream"
    config_type = NatsJetStreamConfig

    def __init__(self, config: NatsJetStreamConfig, *, context: ScalerContext) -> None:
        self.config = config
        if config.monitoring_url is not None:
            account = config.account or ""
            self._url = str(
                URL(config.monitoring_url)
                .with_path("/jsz")
                .with_query({"acc": account, "consumers": "true", "config": "true"})
            )
            where = f"{config.monitoring_url} account {account!r}"
        else:
            self._url = ""
            where = str(config.server_address)
        super().__init__(
            context=context,
            target=float(config.lag_threshold),
            activation_target=float(config.activation_lag_threshold),
            metric_name=dns_safe_name(f"nats-jetstream-{config.stream}"),
            timeout=DEFAULT_TIMEOUT,
            what=f"nats-jetstream {where} consumer {config.stream}/{config.consumer}",
            secrets=(config.password, config.token),
        )
        # A pooled nats-py connection that closed stays closed: open a new one next time.
        self.discard_on_unavailable = config.server_address is not None

    def client_key(self) -> Hashable:
        c = self.config
        if c.monitoring_url is not None:
            return ("nats-monitoring", c.monitoring_url)
        return ("nats", c.server_address, secret_digest(c.username, c.password, c.token))

    async def open_client(self) -> _Client:
        c = self.config
        if c.monitoring_url is not None:
            # The HTTP path shares the process-wide aiohttp session for this origin.
            return self._context.sessions.lease(origin=c.monitoring_url)
        client = NatsClient()
        try:
            await client.connect(
                servers=[str(c.server_address)],
                user=c.username,
                password=c.password,
                token=c.token,
                connect_timeout=max(1, round(self.timeout)),
                # nats-py retries a refused server forever unless it may retry at least once
                # (then it gives up after the second refusal): one quick retry, no waiting.
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                error_cb=_ignore_error,
                name="updraft-scaler",
            )
        except BaseException:
            # A refused connect leaves nats-py's socket open unless the client is closed.
            await self.close_client(client)
            raise
        return client

    async def close_client(self, client: _Client) -> None:
        if isinstance(client, SessionLease):
            await client.release()
        else:
            with contextlib.suppress(nats.errors.Error, OSError):
                await client.close()

    async def depth(self, client: _Client) -> float:
        if isinstance(client, SessionLease):
            return await self._depth_from_monitoring(client.session)
        info = await client.jetstream(timeout=self.timeout).consumer_info(
            self.config.stream, self.config.consumer
        )
        return float((info.num_pending or 0) + (info.num_ack_pending or 0))

    async def _depth_from_monitoring(self, session: aiohttp.ClientSession) -> float:
        async with session.get(self._url, timeout=aiohttp.ClientTimeout(total=self.timeout)) as r:
            status = r.status
            body = await r.read()
        if status in (401, 403):
            raise AuthError(self.message(f"credentials refused: HTTP {status}"), status=status)
        if not 200 <= status < 300:
            text = body[:200].decode("utf-8", "replace").strip()
            raise BadResponseError(self.message(f"HTTP {status}: {text}"), status=status)
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise BadResponseError(self.message("/jsz answer is not JSON"), status=status) from None
        lag = consumer_lag(
            document,
            account=self.config.account or "",
            stream=self.config.stream,
            consumer=self.config.consumer,
        )
        if isinstance(lag, str):
            raise BadResultError(self.message(lag))
        return lag

    def translate(self, error: Exception) -> ScalerError | None:
        text = self.library_text(error)
        if isinstance(error, aiohttp.ClientResponseError):
            return UnavailableError(self.message(f"HTTP error {error.status}"))
        if isinstance(error, aiohttp.ClientError | OSError):
            return UnavailableError(self.message(f"unreachable ({text})"))
        if isinstance(error, nats.errors.AuthorizationError) or (
            isinstance(error, nats.errors.Error) and "authorization" in text.lower()
        ):
            return AuthError(self.message(f"credentials refused: {text}"))
        if isinstance(error, nats.js.errors.NotFoundError):
            return BadResultError(self.message(f"stream or consumer not found: {text}"))
        if isinstance(error, nats.js.errors.APIError):
            return BadResponseError(self.message(text))
        if isinstance(
            error,
            nats.errors.ConnectionClosedError
            | nats.errors.NoServersError
            | nats.errors.TimeoutError
            | nats.errors.NoRespondersError
            | nats.errors.StaleConnectionError,
        ):
            return UnavailableError(self.message(f"unreachable ({text})"))
        if isinstance(error, nats.errors.Error):
            return BadResponseError(self.message(text))
        return None


async def _ignore_error(error: Exception) -> None:
    """nats-py reports connection errors here as well as raising them; the raise is enough."""
