"""The ``rabbitmq`` scaler: a queue's length or publish rate, over AMQP or the management API.

Keys and defaults follow KEDA's RabbitMQ scaler: ``host`` (metadata or auth; ``amqp(s)://`` or
``http(s)://user:pass@host:port/vhost``), ``queueName`` (required), ``protocol`` (``auto`` picks
by the scheme), ``mode`` (``QueueLength`` or ``MessageRate``) with ``value`` (target), the
deprecated ``queueLength`` (not with ``mode``/``value``; nothing set means QueueLength 20),
``activationValue`` (0), ``vhostName`` (overrides the URL's vhost), and for HTTP only
``useRegex`` + ``pageSize`` (100) + ``operation`` (sum, avg, max), ``excludeUnacknowledged`` and
``timeout``; ``unsafeSsl``; ``username``/``password`` in auth override the URL's.

Over AMQP the depth is the ready-message count of a passive queue declare (unacknowledged
messages are not in it: AMQP does not report them). Over HTTP it is ``messages`` (ready plus
unacknowledged) or ``messages_ready`` with ``excludeUnacknowledged``, and MessageRate is
``message_stats.publish_details.rate``; a MessageRate trigger is also active while the queue holds
more than ``activationValue`` messages, as in KEDA. The management API refreshes its numbers every
``collect_statistics_interval`` (5 s by default), so HTTP depths lag that much.

Triggers with equal AMQP settings share one connection (a channel per measurement); HTTP triggers
share the aiohttp session of their server's origin. Other modes, OAuth and client certificates are
not supported and say so.
"""

from __future__ import annotations

import base64
import contextlib
import math
import ssl
import statistics
from collections.abc import Collection, Hashable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import aio_pika
import aio_pika.abc
import aiohttp
import aiormq.exceptions
import orjson
from yarl import URL

from scalers.base import ConfiguredScaler, ScalerContext, dns_safe_name
from scalers.clients import secret_digest
from scalers.depth import DEFAULT_TIMEOUT, DepthScaler
from scalers.errors import (
    REDACTED,
    AuthError,
    BadResponseError,
    BadResultError,
    ScalerError,
    UnavailableError,
)
from scalers.metadata import MetadataReader
from scalers.sessions import SessionLease, TlsMaterial, ssl_context
from scalers.spec import TriggerSpec

__all__ = ["RabbitMQConfig", "RabbitMQScaler"]

DEFAULT_QUEUE_LENGTH = 20.0
"""KEDA's target when neither ``mode``/``value`` nor ``queueLength`` is given."""
DEFAULT_PAGE_SIZE = 100

_MODES = ("QueueLength", "MessageRate")
_HTTP_ONLY_MODES = ("DeliverGetRate", "PublishedToDeliveredRatio", "ExpectedQueueConsumptionTime")
_OPERATIONS = ("sum", "avg", "max")
_DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671, "http": 15672, "https": 15671}


def _shown(url: URL) -> str:
    """``url`` without credentials, for messages."""
    return str(url.with_user(None).with_password(None))


@dataclass(frozen=True, slots=True, repr=False)
class RabbitMQConfig:
    url: URL
    """Scheme, host, port and (HTTP) path prefix; no credentials, no vhost."""
    vhost: str
    queue_name: str
    protocol: str
    """``amqp`` or ``http`` (TLS is in ``url.scheme``)."""
    mode: str = "QueueLength"
    value: float = DEFAULT_QUEUE_LENGTH
    activation_value: float = 0.0
    use_regex: bool = False
    page_size: int = DEFAULT_PAGE_SIZE
    operation: str = "sum"
    exclude_unacknowledged: bool = False
    timeout: float = DEFAULT_TIMEOUT
    unsafe_ssl: bool = False
    username: str | None = None
    password: str | None = None
    ca: str | None = None

    def __repr__(self) -> str:
        return (
            f"RabbitMQConfig({_shown(self.url)!r}, vhost={self.vhost!r}, queue={self.queue_name!r})"
        )

    @classmethod
    def parse(cls, spec: TriggerSpec, *, ignore: Collection[str] = ()) -> RabbitMQConfig:
        meta = MetadataReader(spec.metadata, ignore=ignore)
        auth = MetadataReader(spec.auth, secret=True)
        meta.unsupported("hostFromEnv", "Updraft resolves no pod environment; put host in auth")
        meta.unsupported("metricName", "removed in KEDA 2.12; names are generated")
        if meta.has("host") and auth.has("host"):
            raise auth.error("host", REDACTED, "host in auth or in metadata, not both")
        reader = auth if auth.has("host") else meta
        expected = "an amqp(s):// or http(s):// URL such as amqp://user:pass@rabbitmq:5672/vhost"
        raw_host = reader.required_str("host", expected=expected)
        try:
            url = URL(raw_host)
            valid = url.scheme in _DEFAULT_PORTS and bool(url.host)
        except (ValueError, TypeError):
            valid = False
        if not valid:
            shown = REDACTED if reader is auth else raw_host.split("@")[-1]
            raise reader.error("host", shown, expected)
        queue = meta.required_str("queueName", expected="a queue name (or a regex with useRegex)")
        scheme_protocol = "amqp" if url.scheme.startswith("amqp") else "http"
        protocol = meta.optional_str("protocol") or "auto"
        if protocol not in ("auto", "amqp", "http"):
            raise meta.error("protocol", protocol, "auto, amqp or http")
        if protocol != "auto" and protocol != scheme_protocol:
            raise meta.error("protocol", protocol, f"{scheme_protocol} for a {url.scheme}:// host")
        mode, value = _mode_and_value(meta)
        activation = meta.float_("activationValue", default=0.0)
        use_regex = meta.bool_("useRegex", default=False)
        page_size = meta.int_("pageSize", default=DEFAULT_PAGE_SIZE, minimum=1)
        operation = meta.optional_str("operation") or "sum"
        if operation not in _OPERATIONS:
            raise meta.error("operation", operation, "sum, avg or max")
        exclude = meta.bool_("excludeUnacknowledged", default=False)
        timeout = meta.duration("timeout", default=DEFAULT_TIMEOUT)
        if scheme_protocol == "amqp":
            for key in ("useRegex", "pageSize", "operation", "excludeUnacknowledged", "timeout"):
                if meta.has(key):
                    raise meta.error(key, meta.raw(key), f"{key} only with protocol http")
            if mode != "QueueLength":
                raise meta.error("mode", mode, "QueueLength over AMQP (MessageRate needs http)")
        # The URL's last path segment is the vhost ("/" when empty); over HTTP the segments
        # before it are a path prefix (a management API behind a proxy). vhostName overrides
        # the vhost, never the prefix.
        prefix, _, url_vhost = url.raw_path.rstrip("/").rpartition("/")
        if scheme_protocol == "amqp":
            prefix, url_vhost = "", url.raw_path[1:]
        vhost = meta.optional_str("vhostName") or unquote(url_vhost) or "/"
        unsafe = meta.bool_("unsafeSsl", default=False)
        username = auth.optional_str("username") or url.user
        password = auth.optional_str("password") or url.password
        tls = auth.optional_str("tls")
        if tls is not None and tls not in ("enable", "disable"):
            raise auth.error("tls", tls, "enable or disable")
        if tls == "enable" and not url.scheme.endswith("s"):
            raise auth.error("tls", tls, f"a {url.scheme}s:// host for tls enable")
        ca = auth.optional_str("ca")
        if ca is not None and "-----BEGIN" not in ca:
            raise auth.error("ca", ca, "PEM text (-----BEGIN ...)")
        for key in ("cert", "key", "keyPassword"):
            auth.unsupported(key, "TLS client certificates are not supported for RabbitMQ")
        for key in ("oauthTokenURI", "scopes", "clientID", "clientSecret", "endpointParams"):
            auth.unsupported(key, "OAuth2 is not supported for RabbitMQ")
        meta.reject_unknown()
        auth.reject_unknown()
        port = url.explicit_port or _DEFAULT_PORTS[url.scheme]
        base = URL.build(
            scheme=url.scheme, host=url.host or "", port=port, path=prefix, encoded=True
        )
        return cls(
            url=base,
            vhost=vhost,
            queue_name=queue,
            protocol=scheme_protocol,
            mode=mode,
            value=value,
            activation_value=activation,
            use_regex=use_regex,
            page_size=page_size,
            operation=operation,
            exclude_unacknowledged=exclude,
            timeout=timeout,
            unsafe_ssl=unsafe,
            username=username,
            password=password,
            ca=ca,
        )


def _mode_and_value(meta: MetadataReader) -> tuple[str, float]:
    mode = meta.optional_str("mode")
    has_value = meta.has("value")
    if meta.has("queueLength"):
        if mode is not None or has_value:
            raise meta.error(
                "queueLength", meta.raw("queueLength"), "queueLength alone (or mode and value)"
            )
        return "QueueLength", meta.float_("queueLength", positive=True)
    if mode is None:
        if has_value:
            raise meta.error("mode", None, f"one of {', '.join(_MODES)} with value")
        return "QueueLength", DEFAULT_QUEUE_LENGTH
    if mode in _HTTP_ONLY_MODES:
        raise meta.error("mode", mode, f"one of {', '.join(_MODES)} ({mode} is not supported)")
    if mode not in _MODES:
        raise meta.error("mode", mode, f"one of {', '.join(_MODES)}")
    return mode, meta.float_("value", positive=True)


def _number(item: Any, *path: str) -> float:
    for name in path:
        item = item.get(name) if isinstance(item, dict) else None
    return float(item) if isinstance(item, int | float) and not isinstance(item, bool) else 0.0


_Client = SessionLease | aio_pika.abc.AbstractConnection


class RabbitMQScaler(DepthScaler[_Client], ConfiguredScaler[RabbitMQConfig]):
    type_name = "rabbitmq"
    config_type = RabbitMQConfig

    def __init__(self, config: RabbitMQConfig, *, context: ScalerContext) -> None:
        self.config = config
        what = (
            f"rabbitmq {_shown(config.url)} vhost {config.vhost!r} "
            f"{'queues matching' if config.use_regex else 'queue'} {config.queue_name!r}"
        )
        super().__init__(
            context=context,
            target=config.value,
            activation_target=config.activation_value,
            metric_name=dns_safe_name(f"rabbitmq-{quote(config.queue_name, safe='')}"),
            timeout=config.timeout,
            what=what,
            secrets=(config.password,),
        )
        # HTTP sessions reconnect by themselves; a closed AMQP connection stays closed.
        self.discard_on_unavailable = config.protocol == "amqp"
        self._messages = 0.0
        vhost = quote(config.vhost, safe="")
        base = str(config.url).rstrip("/")
        if config.use_regex:
            query = (
                f"?page=1&page_size={config.page_size}&use_regex=true"
                f"&name={quote(config.queue_name, safe='')}"
            )
            self._api = URL(f"{base}/api/queues/{vhost}{query}", encoded=True)
        else:
            queue = quote(config.queue_name, safe="")
            self._api = URL(f"{base}/api/queues/{vhost}/{queue}", encoded=True)
        self._headers: dict[str, str] = {}
        if config.username or config.password:
            token = f"{config.username or ''}:{config.password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(token).decode("ascii")

    def is_active(self, value: float) -> bool:
        if self.config.mode == "MessageRate" and self._messages > self.activation_target:
            return True
        return value > self.activation_target

    # -- clients ------------------------------------------------------------------------

    def client_key(self) -> Hashable:
        c = self.config
        credentials = secret_digest(c.username, c.password, c.ca)
        if c.protocol == "http":
            # Credentials travel per request: every trigger on this origin shares the session.
            return ("rabbitmq-http", str(c.url.origin()), c.unsafe_ssl, secret_digest(c.ca))
        return ("rabbitmq-amqp", str(c.url), c.vhost, c.unsafe_ssl, credentials)

    def _ssl(self) -> ssl.SSLContext | None:
        c = self.config
        if not c.url.scheme.endswith("s"):
            return None
        return ssl_context(TlsMaterial(ca=c.ca), unsafe=c.unsafe_ssl)

    async def open_client(self) -> _Client:
        c = self.config
        if c.protocol == "http":
            return self._context.sessions.lease(
                origin=str(c.url.origin()), unsafe_ssl=c.unsafe_ssl, tls=TlsMaterial(ca=c.ca)
            )
        context = self._ssl()
        return await aio_pika.connect(
            host=c.url.host or "",
            port=c.url.port or _DEFAULT_PORTS[c.url.scheme],
            login=c.username or "guest",
            password=c.password or "guest",
            virtualhost=c.vhost,
            ssl=context is not None,
            ssl_context=context,
            timeout=self.timeout,
            client_properties={"connection_name": "updraft-scaler"},
        )

    async def close_client(self, client: _Client) -> None:
        if isinstance(client, SessionLease):
            await client.release()
            return
        with contextlib.suppress(aiormq.exceptions.AMQPError, OSError):
            await client.close()

    # -- measuring ----------------------------------------------------------------------

    async def depth(self, client: _Client) -> float:
        if isinstance(client, SessionLease):
            return await self._depth_over_http(client.session)
        async with client.channel() as channel:
            queue = await channel.declare_queue(self.config.queue_name, passive=True)
            count = queue.declaration_result.message_count
        return float(count or 0)

    async def _depth_over_http(self, session: aiohttp.ClientSession) -> float:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with session.get(self._api, headers=self._headers, timeout=timeout) as response:
            status = response.status
            body = await response.read()
        if status in (401, 403):
            raise AuthError(self.message(f"credentials refused: HTTP {status}"), status=status)
        if status == 404:
            raise BadResponseError(self.message("not found (HTTP 404)"), status=status)
        if not 200 <= status < 300:
            text = self.library_text(Exception(body[:200].decode("utf-8", "replace").strip()))
            raise BadResponseError(self.message(f"HTTP {status}: {text}"), status=status)
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise BadResponseError(self.message("answer is not JSON"), status=status) from None
        if self.config.use_regex:
            if not isinstance(document, dict) or not isinstance(document.get("items"), list):
                raise BadResponseError(self.message("answer has no items"), status=status)
            if _number(document, "page_count") > 1:
                raise BadResultError(
                    self.message(
                        f"matches more than one page of {self.config.page_size} queues; "
                        "raise pageSize or narrow the regex"
                    )
                )
            items = [item for item in document["items"] if isinstance(item, dict)]
        elif isinstance(document, dict):
            items = [document]
        else:
            raise BadResponseError(self.message("answer is not a JSON object"), status=status)
        count_key = "messages_ready" if self.config.exclude_unacknowledged else "messages"
        counts = [_number(item, count_key) for item in items]
        rates = [_number(item, "message_stats", "publish_details", "rate") for item in items]
        self._messages = self._aggregate(counts)
        value = self._aggregate(rates) if self.config.mode == "MessageRate" else self._messages
        if not math.isfinite(value):
            raise BadResultError(self.message(f"value {value} is not a finite number"))
        return value

    def _aggregate(self, values: list[float]) -> float:
        if not values:
            return 0.0
        if self.config.operation == "max":
            return max(values)
        if self.config.operation == "avg":
            return statistics.fmean(values)
        return math.fsum(values)

    def translate(self, error: Exception) -> ScalerError | None:
        text = self.library_text(error)
        if isinstance(error, aiohttp.ClientResponseError):
            return UnavailableError(self.message(f"HTTP error {error.status}"))
        if isinstance(error, aiohttp.ClientError):
            return UnavailableError(self.message(f"unreachable ({text})"))
        if isinstance(error, aiormq.exceptions.ChannelNotFoundEntity):
            return BadResponseError(self.message("not found"))
        if isinstance(error, aiormq.exceptions.ChannelAccessRefused):
            return AuthError(self.message(f"access refused: {text}"))
        refused = "ACCESS_REFUSED" in text or "NOT_ALLOWED" in text
        if isinstance(
            error,
            aiormq.exceptions.ProbableAuthenticationError | aiormq.exceptions.AuthenticationError,
        ) or (isinstance(error, aiormq.exceptions.AMQPError) and refused):
            return AuthError(self.message(f"credentials refused: {text}"))
        if isinstance(
            error,
            aiormq.exceptions.AMQPConnectionError
            | aiormq.exceptions.ConnectionClosed
            | aiormq.exceptions.ChannelInvalidStateError
            | ConnectionError
            | OSError,
        ):
            return UnavailableError(self.message(f"unreachable ({text})"))
        if isinstance(error, aiormq.exceptions.AMQPError):
            return BadResponseError(self.message(text))
        return None
