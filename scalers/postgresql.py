"""The ``postgresql`` scaler: one SQL query, one numeric cell.

Keys follow KEDA's PostgreSQL scaler: ``query`` (required), ``targetQueryValue`` (required),
``activationTargetQueryValue`` (0); where to connect either as ``connection`` in auth (a libpq
``key=value`` string or a ``postgres://`` URL) or as ``host``, ``port`` (5432), ``userName``,
``dbName`` and ``sslmode`` (metadata or auth) with ``password`` in auth.

The query runs in a read-only transaction with ``statement_timeout`` set just under the scaler's
timeout, through a cursor that fetches at most two rows: a query may count, never write or
stream a table. Its result must be exactly one row of one numeric, non-NULL column; anything else
is an error that says what came back. Triggers with equal connection settings share one asyncpg
pool that opens connections on demand.
"""

from __future__ import annotations

import decimal
import hashlib
import math
import re
from collections.abc import Collection, Hashable
from dataclasses import dataclass
from typing import Any

import asyncpg
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
from scalers.spec import TriggerSpec

__all__ = ["PostgresConfig", "PostgresScaler", "parse_connection_string"]

POOL_MAX_SIZE = 4
"""Connections per (server, credentials): a measurement holds one for a single short query, and
PostgreSQL servers are sized in tens of connections, which autoscaling must not eat."""

_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_CONNECTION_EXPECTED = (
    "a libpq connection string (host=... port=... user=... password=... dbname=... "
    "sslmode=...) or a postgres:// URL"
)
# libpq keywords we pass on, by the name asyncpg's connect() takes.
_LIBPQ_KEYS = {
    "host": "host",
    "hostaddr": "host",
    "port": "port",
    "user": "user",
    "password": "password",
    "dbname": "database",
    "sslmode": "ssl",
    "application_name": "application_name",
    "connect_timeout": None,  # the scaler's timeout bounds connecting
}
_PAIR = re.compile(r"\s*([A-Za-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']*)")


def parse_connection_string(text: str) -> dict[str, str]:
    """libpq ``key=value`` pairs or a URL, as asyncpg ``connect()`` keywords; ``ValueError``
    (whose message never quotes ``text``) when it is neither."""
    if text.startswith(("postgres://", "postgresql://")):
        return _parse_url(text)
    params: dict[str, str] = {}
    pos = 0
    while text[pos:].strip():
        match = _PAIR.match(text, pos)
        if match is None:
            raise ValueError("not key=value pairs")
        name, value = match.group(1), match.group(2)
        if value.startswith("'"):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        _put(params, name, value)
        pos = match.end()
    return params


def _put(params: dict[str, str], name: str, value: str) -> None:
    if name not in _LIBPQ_KEYS:
        raise ValueError(f"unsupported keyword {name!r} (known: {', '.join(sorted(_LIBPQ_KEYS))})")
    target = _LIBPQ_KEYS[name]
    if target is not None:
        params[target] = value


def _parse_url(text: str) -> dict[str, str]:
    try:
        url = URL(text)
    except (ValueError, TypeError):
        raise ValueError("not a valid URL") from None
    params: dict[str, str] = {}
    if url.host:
        params["host"] = url.host
    if url.explicit_port is not None:
        params["port"] = str(url.explicit_port)
    if url.user:
        params["user"] = url.user
    if url.password:
        params["password"] = url.password
    if url.path.strip("/"):
        params["database"] = url.path.strip("/")
    for name, value in url.query.items():
        _put(params, name, value)
    return params


@dataclass(frozen=True, slots=True, repr=False)
class PostgresConfig:
    query: str
    target: float
    activation_target: float = 0.0
    host: str = "localhost"
    port: int = 5432
    user: str | None = None
    database: str | None = None
    sslmode: str | None = None
    password: str | None = None
    application_name: str | None = None

    def __repr__(self) -> str:
        return f"PostgresConfig({self.shown!r}, query={self.query!r})"

    @property
    def shown(self) -> str:
        return f"postgresql {self.host}:{self.port}/{self.database or ''}"

    @classmethod
    def parse(cls, spec: TriggerSpec, *, ignore: Collection[str] = ()) -> PostgresConfig:
        meta = MetadataReader(spec.metadata, ignore=ignore)
        auth = MetadataReader(spec.auth, secret=True)
        query = meta.required_str("query", expected="an SQL query returning one numeric cell")
        target = meta.float_("targetQueryValue", positive=True)
        activation = meta.float_("activationTargetQueryValue", default=0.0)
        for key in ("connectionFromEnv", "passwordFromEnv"):
            meta.unsupported(key, "Updraft resolves no pod environment; put the value in auth")
        meta.unsupported("metricName", "removed in KEDA 2.12; names are generated")
        if meta.has("connection") or meta.has("password"):
            key = "connection" if meta.has("connection") else "password"
            raise meta.error(key, REDACTED, f"{key} in auth, not in metadata (it holds a secret)")
        params: dict[str, str] = {}
        connection = auth.optional_str("connection")
        if connection is not None:
            try:
                params = parse_connection_string(connection.strip())
            except ValueError as error:
                raise auth.error(
                    "connection", connection, f"{_CONNECTION_EXPECTED}: {error}"
                ) from None
        fields = {"host": "host", "port": "port", "userName": "user", "dbName": "database"}
        for key, name in (*fields.items(), ("sslmode", "ssl")):
            value = meta.optional_str(key) or auth.optional_str(key)
            if value is not None:
                params[name] = value
        password = auth.optional_str("password")
        if password is not None:
            params["password"] = password
        meta.reject_unknown()
        auth.reject_unknown()
        reader = auth if connection is not None else meta
        port_text = params.get("port", "5432")
        if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
            raise reader.error("port", port_text, "a TCP port (1-65535)")
        sslmode = params.get("ssl")
        if sslmode is not None and sslmode not in _SSLMODES:
            raise reader.error("sslmode", sslmode, f"one of: {', '.join(_SSLMODES)}")
        if connection is None and "host" not in params:
            raise meta.error("host", None, "host (or connection in auth)")
        return cls(
            query=query,
            target=target,
            activation_target=activation,
            host=params.get("host", "localhost"),
            port=int(port_text),
            user=params.get("user"),
            database=params.get("database"),
            sslmode=sslmode,
            password=params.get("password"),
            application_name=params.get("application_name"),
        )


def _cell(value: Any) -> float | str:
    """The cell as a float, or a phrase saying why it is not one."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, int | float | decimal.Decimal):
        number = float(value)
        return number if math.isfinite(number) else f"{number}"
    return f"a value of type {type(value).__name__}"


class PostgresScaler(DepthScaler[asyncpg.Pool], ConfiguredScaler[PostgresConfig]):
    type_name = "postgresql"
    config_type = PostgresConfig
    discard_on_unavailable = False  # the pool replaces broken connections itself

    def __init__(self, config: PostgresConfig, *, context: ScalerContext) -> None:
        self.config = config
        identity = "\x00".join([config.host, str(config.port), config.database or "", config.query])
        digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        super().__init__(
            context=context,
            target=config.target,
            activation_target=config.activation_target,
            metric_name=dns_safe_name(f"postgresql-{digest}"),
            timeout=DEFAULT_TIMEOUT,
            what=f"{config.shown} query {_shorten(config.query)!r}",
            secrets=(config.password,),
        )

    def client_key(self) -> Hashable:
        c = self.config
        return (
            "postgresql",
            c.host,
            c.port,
            c.database,
            c.sslmode,
            c.application_name,
            secret_digest(c.user, c.password),
        )

    async def open_client(self) -> asyncpg.Pool:
        c = self.config
        options: dict[str, Any] = {}
        if c.sslmode is not None:
            options["ssl"] = c.sslmode
        if c.application_name is not None:
            options["server_settings"] = {"application_name": c.application_name}
        # min_size 0: no connection until a measurement needs one, so opening cannot fail.
        pool = asyncpg.create_pool(
            host=c.host,
            port=c.port,
            user=c.user,
            password=c.password,
            database=c.database,
            min_size=0,
            max_size=POOL_MAX_SIZE,
            timeout=self.timeout,
            max_inactive_connection_lifetime=60.0,
            **options,
        )
        return await pool

    async def close_client(self, client: asyncpg.Pool) -> None:
        await client.close()

    async def depth(self, client: asyncpg.Pool) -> float:
        # statement_timeout a little under ours, so the server cancels the query before we
        # give up on it and the pooled connection stays usable.
        statement_ms = max(1, int(self.timeout * 900))
        async with (
            client.acquire(timeout=self.timeout) as connection,
            connection.transaction(readonly=True),
        ):
            await connection.execute(f"SET LOCAL statement_timeout = {statement_ms}")
            statement = await connection.prepare(self.config.query)
            columns = statement.get_attributes()
            if len(columns) != 1:
                raise BadResultError(
                    self.message(f"returned {len(columns)} columns; expected exactly one")
                )
            cursor = await statement.cursor()
            rows = await cursor.fetch(2)
        if not rows:
            raise BadResultError(self.message("returned no rows; expected exactly one"))
        if len(rows) > 1:
            raise BadResultError(self.message("returned more than one row; expected exactly one"))
        value = _cell(rows[0][0])
        if isinstance(value, str):
            raise BadResultError(self.message(f"returned {value}; expected a number"))
        return value

    def translate(self, error: Exception) -> ScalerError | None:
        text = self.library_text(error)
        if isinstance(error, asyncpg.InvalidAuthorizationSpecificationError):
            return AuthError(self.message(f"credentials refused: {text}"))
        if isinstance(error, asyncpg.QueryCanceledError):
            return UnavailableError(self.message(f"statement timeout: {text}"))
        if isinstance(error, asyncpg.ReadOnlySQLTransactionError):
            return BadResponseError(
                self.message(f"the query must not write (it runs read-only): {text}")
            )
        if isinstance(
            error,
            OSError
            | asyncpg.PostgresConnectionError
            | asyncpg.CannotConnectNowError
            | asyncpg.TooManyConnectionsError
            | asyncpg.InterfaceError,
        ):
            return UnavailableError(self.message(f"unreachable ({text})"))
        if isinstance(error, asyncpg.PostgresError):
            return BadResponseError(self.message(f"{error.sqlstate}: {text}"))
        return None


def _shorten(query: str) -> str:
    query = " ".join(query.split())
    return query if len(query) <= 80 else query[:77] + "..."
