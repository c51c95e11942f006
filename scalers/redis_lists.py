"""The ``redis`` scaler: the length of one key (a list, or a set, sorted set or hash).

Keys and defaults follow KEDA's Redis scaler: ``listName`` (required), ``listLength`` (target,
5), ``activationListLength`` (0), plus the connection keys of ``redis_connection``. The depth is
read by one Lua script, so the key's type and its length come from one moment: a list (or a
missing key, 0) by LLEN, a sorted set by ZCARD, a set by SCARD, a hash by HLEN; any other type
is an error that names it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import redis.asyncio as aioredis

from scalers.base import ConfiguredScaler, ScalerContext, dns_safe_name
from scalers.depth import DEFAULT_TIMEOUT
from scalers.errors import BadResponseError, BadResultError, ScalerError
from scalers.metadata import MetadataReader
from scalers.redis_connection import RedisConnection, RedisDepthScaler, translate_redis_error
from scalers.spec import TriggerSpec

__all__ = ["RedisListConfig", "RedisListScaler"]

# KEYS[1]: the key. Returns {type, length}; length -1 for a type we do not measure.
DEPTH_SCRIPT = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' or kind == 'list' then return {kind, redis.call('LLEN', KEYS[1])} end
if kind == 'zset' then return {kind, redis.call('ZCARD', KEYS[1])} end
if kind == 'set' then return {kind, redis.call('SCARD', KEYS[1])} end
if kind == 'hash' then return {kind, redis.call('HLEN', KEYS[1])} end
return {kind, -1}
"""


@dataclass(frozen=True, slots=True)
class RedisListConfig:
    connection: RedisConnection
    list_name: str
    list_length: int = 5
    activation_list_length: int = 0

    @classmethod
    def parse(cls, spec: TriggerSpec, *, ignore: Collection[str] = ()) -> RedisListConfig:
        meta = MetadataReader(spec.metadata, ignore=ignore)
        auth = MetadataReader(spec.auth, secret=True)
        list_name = meta.required_str("listName", expected="the name of a Redis key")
        list_length = meta.int_("listLength", default=5, minimum=1)
        activation = meta.int_("activationListLength", default=0, minimum=0)
        connection = RedisConnection.parse(meta, auth)
        meta.unsupported("metricName", "removed in KEDA 2.12; names are generated")
        meta.reject_unknown()
        auth.reject_unknown()
        return cls(
            connection=connection,
            list_name=list_name,
            list_length=list_length,
            activation_list_length=activation,
        )


class RedisListScaler(RedisDepthScaler, ConfiguredScaler[RedisListConfig]):
    type_name = "redis"
    config_type = RedisListConfig

    def __init__(self, config: RedisListConfig, *, context: ScalerContext) -> None:
        self.config = config
        self.connection = config.connection
        super().__init__(
            context=context,
            target=float(config.list_length),
            activation_target=float(config.activation_list_length),
            metric_name=dns_safe_name(f"redis-{config.list_name}"),
            timeout=DEFAULT_TIMEOUT,
            what=f"{config.connection.shown} key {config.list_name!r}",
            secrets=config.connection.secrets,
        )

    async def depth(self, client: aioredis.Redis) -> float:
        reply = await client.eval(DEPTH_SCRIPT, 1, self.config.list_name)
        if not (isinstance(reply, list) and len(reply) == 2 and isinstance(reply[1], int)):
            raise BadResponseError(self.message(f"unexpected script reply {str(reply)[:80]}"))
        kind = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        if reply[1] < 0:
            raise BadResultError(
                self.message(f"is a {kind}; expected a list, set, sorted set or hash")
            )
        return float(reply[1])

    def translate(self, error: Exception) -> ScalerError | None:
        return translate_redis_error(error, message=self.message, text=self.library_text(error))
