"""The ``redis-streams`` scaler: a stream's length, a group's pending entries, or its lag.

Keys and defaults follow KEDA's Redis Streams scaler: ``stream`` (required), ``consumerGroup``,
``pendingEntriesCount`` (5), ``streamLength`` (5), ``lagCount`` (no default, as in KEDA's code),
``activationLagCount`` (0, for every mode), plus the connection keys of ``redis_connection``.
The mode follows from the keys: no ``consumerGroup``: XLEN against ``streamLength``; a group and a
non-zero ``lagCount``: the group's ``lag`` from XINFO GROUPS (Redis 7+) against ``lagCount``;
otherwise the group's XPENDING count against ``pendingEntriesCount``. A missing stream is 0; a
missing group is the stream's length (every entry is still to be read). One Lua script reads
all of it, so type, group and count come from one moment.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass

import redis.asyncio as aioredis

from scalers.base import ConfiguredScaler, ScalerContext, dns_safe_name
from scalers.depth import DEFAULT_TIMEOUT
from scalers.errors import BadResponseError, BadResultError, ScalerError
from scalers.metadata import MetadataReader
from scalers.redis_connection import RedisConnection, RedisDepthScaler, translate_redis_error
from scalers.spec import TriggerSpec

__all__ = ["RedisStreamConfig", "RedisStreamMode", "RedisStreamScaler"]


class RedisStreamMode(enum.Enum):
    STREAM_LENGTH = "xlen"
    PENDING_ENTRIES = "pending"
    LAG = "lag"


# KEYS[1]: the stream; ARGV[1]: mode; ARGV[2]: group. Returns {status, count} where status is
# 'ok', 'none' (no such key: count 0), 'nogroup' (count = XLEN), 'nolag' (Redis could not
# compute the lag, or is older than 7) or the key's type when it is not a stream.
DEPTH_SCRIPT = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return {'none', 0} end
if kind ~= 'stream' then return {kind, -1} end
if ARGV[1] == 'xlen' then return {'ok', redis.call('XLEN', KEYS[1])} end
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local fields = {}
  for i = 1, #group, 2 do fields[group[i]] = group[i + 1] end
  if fields['name'] == ARGV[2] then
    if ARGV[1] == 'pending' then
      return {'ok', redis.call('XPENDING', KEYS[1], ARGV[2])[1]}
    end
    local lag = fields['lag']
    if type(lag) ~= 'number' then return {'nolag', -1} end
    return {'ok', lag}
  end
end
return {'nogroup', redis.call('XLEN', KEYS[1])}
"""


@dataclass(frozen=True, slots=True)
class RedisStreamConfig:
    connection: RedisConnection
    stream: str
    mode: RedisStreamMode
    target: int
    consumer_group: str | None = None
    activation_lag_count: int = 0

    @classmethod
    def parse(cls, spec: TriggerSpec, *, ignore: Collection[str] = ()) -> RedisStreamConfig:
        meta = MetadataReader(spec.metadata, ignore=ignore)
        auth = MetadataReader(spec.auth, secret=True)
        stream = meta.required_str("stream", expected="the name of a Redis stream")
        group = meta.optional_str("consumerGroup")
        pending = meta.int_("pendingEntriesCount", default=5, minimum=1)
        length = meta.int_("streamLength", default=5, minimum=1)
        lag = meta.int_("lagCount", default=0, minimum=0)
        activation = meta.int_("activationLagCount", default=0, minimum=0)
        connection = RedisConnection.parse(meta, auth)
        meta.unsupported("metricName", "removed in KEDA 2.12; names are generated")
        meta.reject_unknown()
        auth.reject_unknown()
        if group is None:
            mode, target = RedisStreamMode.STREAM_LENGTH, length
        elif lag > 0:
            mode, target = RedisStreamMode.LAG, lag
        else:
            mode, target = RedisStreamMode.PENDING_ENTRIES, pending
        return cls(
            connection=connection,
            stream=stream,
            mode=mode,
            target=target,
            consumer_group=group,
            activation_lag_count=activation,
        )


class RedisStreamScaler(RedisDepthScaler, ConfiguredScaler[RedisStreamConfig]):
    type_name = "redis-streams"
    config_type = RedisStreamConfig

    def __init__(self, config: RedisStreamConfig, *, context: ScalerContext) -> None:
        self.config = config
        self.connection = config.connection
        group = f" group {config.consumer_group!r}" if config.consumer_group else ""
        super().__init__(
            context=context,
            target=float(config.target),
            activation_target=float(config.activation_lag_count),
            metric_name=dns_safe_name(f"redis-streams-{config.stream}"),
            timeout=DEFAULT_TIMEOUT,
            what=f"{config.connection.shown} stream {config.stream!r}{group}",
            secrets=config.connection.secrets,
        )

    async def depth(self, client: aioredis.Redis) -> float:
        config = self.config
        reply = await client.eval(
            DEPTH_SCRIPT, 1, config.stream, config.mode.value, config.consumer_group or ""
        )
        if not (isinstance(reply, list) and len(reply) == 2 and isinstance(reply[1], int)):
            raise BadResponseError(self.message(f"unexpected script reply {str(reply)[:80]}"))
        status = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        if status == "nolag":
            raise BadResultError(
                self.message(
                    "Redis reports no lag for the group (it needs Redis 7 or later, and cannot "
                    "tell after entries were deleted); unset lagCount to scale on pending entries"
                )
            )
        if reply[1] < 0:
            raise BadResultError(self.message(f"is a {status}; expected a stream"))
        return float(reply[1])

    def translate(self, error: Exception) -> ScalerError | None:
        return translate_redis_error(error, message=self.message, text=self.library_text(error))
