"""The ``cron`` scaler: a replica floor inside a recurring window of local wall-clock time.

Keys as KEDA's: ``timezone`` (IANA), ``start`` and ``end`` (5-field cron), ``desiredReplicas``.
The trigger is active exactly when the next ``end`` fire is not later than the next ``start``
fire, which covers windows that cross midnight with no special case; at the start minute it is
active, at the end minute not. Value ``desiredReplicas`` when active, 0 otherwise; target 1
(AverageValue: with Value the HPA would multiply by the current replicas, kedacore/keda#3591).

Schedules are evaluated on the zone's wall clock, on naive datetimes, so daylight saving time
cannot shift a window: while the clock repeats an hour (autumn) a window in that hour is open
during both passes; in the hour that does not exist (spring) a window that starts inside it
opens when the clock jumps past its start, and one lying wholly inside it is skipped that day.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from scalers.base import ConfiguredScaler, Measurement, ScalerContext, dns_safe_name
from scalers.errors import ConfigError
from scalers.metadata import MetadataReader
from scalers.spec import TriggerSpec

__all__ = ["CronConfig", "CronScaler"]

_SCHEDULE_EXPECTED = "a 5-field cron schedule (minute hour day-of-month month day-of-week)"
# Any fixed instant works to check that a schedule ever fires; this one is not special.
_PROBE = datetime(2026, 1, 1)


def _schedule(reader: MetadataReader, key: str) -> str:
    value = reader.required_str(key, expected=_SCHEDULE_EXPECTED)
    fields = value.split()
    if value.lstrip().startswith("@"):
        raise reader.error(key, value, f"{_SCHEDULE_EXPECTED}; descriptors like @daily are not")
    if len(fields) != 5:
        raise reader.error(
            key, value, f"{_SCHEDULE_EXPECTED}; got {len(fields)} fields (no seconds or years)"
        )
    normalized = " ".join(fields)
    try:
        croniter(normalized, _PROBE).get_next(datetime)
    except CroniterError as error:
        # croniter's messages repeat the expression; keep only what is wrong with it.
        raise reader.error(key, value, f"{_SCHEDULE_EXPECTED} that fires ({error})") from None
    except (ValueError, TypeError, KeyError, IndexError, OverflowError):
        raise reader.error(key, value, _SCHEDULE_EXPECTED) from None
    return normalized


def _zone(reader: MetadataReader) -> ZoneInfo:
    value = reader.required_str("timezone", expected="an IANA time zone such as Europe/Berlin")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise reader.error("timezone", value, "an IANA time zone such as Europe/Berlin") from None


@dataclass(frozen=True, slots=True)
class CronConfig:
    zone: ZoneInfo
    start: str
    """Normalized: fields joined by single spaces."""
    end: str
    desired_replicas: int

    @classmethod
    def parse(cls, spec: TriggerSpec, *, ignore: Collection[str] = ()) -> CronConfig:
        reader = MetadataReader(spec.metadata, ignore=ignore)
        zone = _zone(reader)
        start = _schedule(reader, "start")
        end = _schedule(reader, "end")
        if start == end:
            raise ConfigError("end", spec.metadata["end"], "a schedule different from start")
        desired = reader.int_("desiredReplicas", minimum=1)
        reader.reject_unknown()
        MetadataReader(spec.auth, secret=True).reject_unknown()
        return cls(zone=zone, start=start, end=end, desired_replicas=desired)

    def is_active(self, now: datetime) -> bool:
        """Whether the window is open at the aware instant ``now``."""
        return self.state(now)[0]

    def state(self, now: datetime) -> tuple[bool, datetime]:
        """Whether the window is open at the aware instant ``now``, and the instant (UTC) of
        the next start or end, whichever comes first: the answer holds until then.

        The next edge is a wall time of the zone; one the clock repeats counts at its first
        pass, one in a skipped hour at the offset before the jump (then the edge may be met up
        to that hour late, bounded by the polling interval as any value is)."""
        wall = now.astimezone(self.zone).replace(tzinfo=None)
        next_start: datetime = croniter(self.start, wall).get_next(datetime)
        next_end: datetime = croniter(self.end, wall).get_next(datetime)
        edge = min(next_start, next_end).replace(tzinfo=self.zone).astimezone(UTC)
        return next_end <= next_start, edge


def _keda_field_text(schedule: str) -> str:
    # KEDA's metric-name spelling of a schedule (kedacore/keda#7448), lowercased later.
    return (
        schedule.replace(" ", "")
        .replace("*", "x")
        .replace("/", "Sl")
        .replace("?", "Qm")
        .replace(",", "Cm")
    )


class CronScaler(ConfiguredScaler[CronConfig]):
    type_name = "cron"
    config_type = CronConfig
    timeout = 1.0

    def __init__(self, config: CronConfig, *, context: ScalerContext) -> None:
        super().__init__(config, context=context)
        self._clock = context.clock
        self.target = 1.0
        self.activation_target = 0.0
        self.metric_name = dns_safe_name(
            f"cron-{config.zone.key}-{_keda_field_text(config.start)}-"
            f"{_keda_field_text(config.end)}"
        )

    async def measure(self) -> Measurement:
        now = self._clock.now().astimezone(UTC)
        active, edge = self.config.state(now)
        value = float(self.config.desired_replicas) if active else 0.0
        return Measurement(value=value, active=active, at=now, valid_until=edge)
