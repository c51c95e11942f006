"""Where a ``redis`` or ``redis-streams`` trigger connects, and the pooled client for it.

Keys follow KEDA's Redis scalers: ``address`` (``host:port``) or ``host`` + ``port``,
``databaseIndex``, ``username`` (metadata or auth), ``password`` (auth), ``enableTLS``
(metadata) or ``tls: enable|disable`` (auth; not both), ``unsafeSsl`` and a ``ca`` (auth).
Triggers with equal settings share one ``redis.asyncio`` connection pool. Client certificates,
``*FromEnv`` keys, cluster and sentinel are not supported and say so. This module builds no query.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from scalers.clients import secret_digest
from scalers.depth import DepthScaler
from scalers.errors import (
    AuthError,
    BadResponseError,
    ScalerError,
    UnavailableError,
)
from scalers.metadata import MetadataReader

__all__ = ["RedisConnection", "RedisDepthScaler", "translate_redis_error"]

MAX_CONNECTIONS = 16
"""Per (server, credentials): a measurement holds a connection for one round trip, so 16 serve
hundreds of triggers polled every few seconds without queueing behind each other."""

_NO_ENV = "Updraft resolves no pod environment; put the value in metadata or auth"
_NOT_CLUSTER = "redis-cluster and redis-sentinel are not supported"


def _port(reader: MetadataReader, key: str, text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise reader.error(key, text, "a TCP port (1-65535)")
    return int(text)


def _address(meta: MetadataReader) -> tuple[str, int]:
    for key in ("addressFromEnv", "hostFromEnv", "portFromEnv"):
        meta.unsupported(key, _NO_ENV)
    for key in ("addresses", "hosts", "ports", "sentinelMaster", "sentinelUsername"):
        meta.unsupported(key, _NOT_CLUSTER)
    address = meta.optional_str("address")
    host = meta.optional_str("host")
    if address is not None:
        if host is not None or meta.has("port"):
            raise meta.error("address", address, "address, or host and port, not both")
        name, sep, port = address.strip().rpartition(":")
        name = name.strip("[]")
        if not sep or not name:
            raise meta.error("address", address, "host:port, such as redis.queues:6379")
        return name, _port(meta, "address", port)
    if host is None:
        raise meta.error("address", None, "host:port (or host and port)")
    port_text = meta.optional_str("port")
    if port_text is None:
        raise meta.error("port", None, "a TCP port (1-65535) with host")
    return host, _port(meta, "port", port_text.strip())


@dataclass(frozen=True, slots=True, repr=False)
class RedisConnection:
    host: str
    port: int
    database: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    unsafe_ssl: bool = False
    ca: str | None = None

    @property
    def shown(self) -> str:
        """``redis host:port/db``, for messages (no credentials)."""
        return f"redis {self.host}:{self.port}/{self.database}"

    def __repr__(self) -> str:
        return f"RedisConnection({self.shown!r}, tls={self.tls})"

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.password,) if self.password else ()

    @classmethod
    def parse(cls, meta: MetadataReader, auth: MetadataReader) -> RedisConnection:
        host, port = _address(meta)
        database = meta.int_("databaseIndex", default=0, minimum=0)
        meta.unsupported("passwordFromEnv", _NO_ENV)
        meta.unsupported("usernameFromEnv", _NO_ENV)
        if meta.has("password"):
            raise meta.error("password", "<redacted>", "the password in auth, not in metadata")
        username = meta.optional_str("username") or auth.optional_str("username")
        password = auth.optional_str("password")
        enable_tls = meta.bool_("enableTLS", default=False)
        tls_param = auth.optional_str("tls")
        if tls_param is not None:
            if meta.has("enableTLS"):
                raise auth.error("tls", tls_param, "tls in auth or enableTLS in metadata, not both")
            if tls_param not in ("enable", "disable"):
                raise auth.error("tls", tls_param, "enable or disable")
            enable_tls = tls_param == "enable"
        unsafe = meta.bool_("unsafeSsl", default=False)
        ca = auth.optional_str("ca")
        if ca is not None and "-----BEGIN" not in ca:
            raise auth.error("ca", ca, "PEM text (-----BEGIN ...)")
        for key in ("cert", "key", "keyPassword"):
            auth.unsupported(key, "TLS client certificates are not supported for Redis")
        return cls(
            host=host,
            port=port,
            database=database,
            username=username,
            password=password,
            tls=enable_tls,
            unsafe_ssl=unsafe,
            ca=ca,
        )

    def key(self) -> Hashable:
        return (
            "redis",
            self.host,
            self.port,
            self.database,
            self.tls,
            self.unsafe_ssl,
            secret_digest(self.username, self.password, self.ca),
        )

    def open(self, *, timeout: float) -> aioredis.Redis:
        """A pooled client; it connects on first use."""
        tls_options: dict[str, object] = {}
        if self.tls:
            tls_options = {
                "ssl": True,
                "ssl_ca_data": self.ca,
                "ssl_cert_reqs": ssl.CERT_NONE if self.unsafe_ssl else ssl.CERT_REQUIRED,
                "ssl_check_hostname": not self.unsafe_ssl,
            }
        return aioredis.Redis(
            host=self.host,
            port=self.port,
            db=self.database,
            username=self.username,
            password=self.password,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # One retry on a fresh connection covers pooled connections the server closed
            # (a restart, an idle timeout); more would only stretch an outage past the deadline.
            retry=Retry(NoBackoff(), 1),
            max_connections=MAX_CONNECTIONS,
            **tls_options,  # type: ignore[arg-type]
        )


def translate_redis_error(
    error: Exception, *, message: Callable[[str], str], text: str
) -> ScalerError | None:
    """Map a redis-py error; ``message`` prefixes (and scrubs), ``text`` is the scrubbed
    library message."""
    refused = isinstance(error, redis_errors.AuthenticationError | redis_errors.NoPermissionError)
    if refused or (
        isinstance(error, redis_errors.ResponseError)
        and text.startswith(("NOAUTH", "WRONGPASS", "NOPERM"))
    ):
        return AuthError(message(f"credentials refused: {text}"))
    if isinstance(error, redis_errors.ConnectionError | redis_errors.TimeoutError | OSError):
        return UnavailableError(message(f"unreachable ({text})"))
    if isinstance(error, redis_errors.RedisError):
        return BadResponseError(message(text))
    return None


class RedisDepthScaler(DepthScaler[aioredis.Redis]):
    """A depth scaler reading one Redis server through the shared pooled client that its
    `connection` names; subclasses say what they count."""

    discard_on_unavailable = False  # redis-py reconnects pooled connections itself
    connection: RedisConnection

    def client_key(self) -> Hashable:
        return self.connection.key()

    async def open_client(self) -> aioredis.Redis:
        return self.connection.open(timeout=self.timeout)

    async def close_client(self, client: aioredis.Redis) -> None:
        await client.aclose()
