"""From a trigger's ``type`` to the ``Scaler`` class that serves it.

A ``Registry`` is plain data with no global instance: ``default_registry()`` returns a fresh one
holding the built-in scalers, and tests or front doors may register more.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from scalers.base import Scaler, ScalerContext
from scalers.cron import CronScaler
from scalers.errors import ConfigError
from scalers.nats_jetstream import NatsJetStreamScaler
from scalers.postgresql import PostgresScaler
from scalers.prometheus import PrometheusScaler
from scalers.rabbitmq import RabbitMQScaler
from scalers.redis_lists import RedisListScaler
from scalers.redis_streams import RedisStreamScaler
from scalers.spec import TriggerSpec
from scalers.sqs import SqsScaler

__all__ = ["Registry", "default_registry"]


class Registry:
    def __init__(self, scalers: Iterable[type[Scaler]] = ()) -> None:
        self._classes: dict[str, type[Scaler]] = {}
        for cls in scalers:
            self.register(cls)

    def register(self, cls: type[Scaler]) -> type[Scaler]:
        """Add ``cls`` under its ``type_name``; usable as a class decorator."""
        name = cls.type_name
        if name in self._classes and self._classes[name] is not cls:
            raise ValueError(f"scaler type {name!r} is already registered")
        self._classes[name] = cls
        return cls

    def types(self) -> tuple[str, ...]:
        return tuple(sorted(self._classes))

    def get(self, type_name: str) -> type[Scaler]:
        try:
            return self._classes[type_name]
        except KeyError:
            raise ConfigError(
                "type", type_name, f"a scaler type (one of: {', '.join(self.types())})"
            ) from None

    def validate(self, spec: TriggerSpec, *, ignore: Collection[str] = ()) -> None:
        """Raise ``ConfigError`` for the first problem in ``spec``; no I/O."""
        self.get(spec.type).validate(spec, ignore=ignore)

    def build(
        self, spec: TriggerSpec, *, context: ScalerContext, ignore: Collection[str] = ()
    ) -> Scaler:
        return self.get(spec.type).from_spec(spec, context=context, ignore=ignore)


def default_registry() -> Registry:
    """A registry holding every built-in scaler."""
    return Registry(
        [
            CronScaler,
            PrometheusScaler,
            RedisListScaler,
            RedisStreamScaler,
            PostgresScaler,
            SqsScaler,
            NatsJetStreamScaler,
            RabbitMQScaler,
        ]
    )
