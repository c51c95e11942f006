"""The scaler contract: ``Scaler``, its ``Measurement`` and the ``ScalerContext`` it is built with.

A scaler turns one validated trigger into numbers: ``measure()`` asks the upstream once, with no
caching, retrying or fallback of its own (``MetricCache`` owns all of that). Scalers hold no
secrets in their repr and must not log auth values.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Generic, Protocol, Self, TypeVar, cast

from kits import Clock
from scalers.sessions import SessionPool
from scalers.spec import TriggerSpec

__all__ = [
    "ConfiguredScaler",
    "Measurement",
    "Scaler",
    "ScalerContext",
    "SpecConfig",
    "dns_safe_name",
]

METRIC_NAME_MAX = 58
"""A DNS label is at most 63 characters; KEDA prefixes external metric names with ``s{i}-``, so
58 leaves room for trigger indexes up to 999."""


@dataclass(frozen=True, slots=True)
class Measurement:
    """One reading: the metric ``value``, whether the trigger is ``active``, and when (UTC)."""

    value: float
    active: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class ScalerContext:
    """What a scaler may use besides its spec; built once per cache."""

    clock: Clock
    sessions: SessionPool


class Scaler(ABC):
    """One trigger's measuring device. Subclasses register a ``type_name`` with a ``Registry``."""

    type_name: ClassVar[str]

    target: float
    """The HPA target per replica (AverageValue)."""
    activation_target: float
    """The trigger is active when the value is above this (cron: by its window instead)."""
    metric_name: str
    """Stable (a function of the metadata only) and a valid DNS label."""
    timeout: float = 10.0
    """The longest one ``measure()`` may take; the cache enforces it as well."""

    @classmethod
    @abstractmethod
    def validate(cls, spec: TriggerSpec, *, ignore: Collection[str] = ()) -> None:
        """Raise ``ConfigError`` naming the first bad key of ``spec``; touch nothing."""

    @classmethod
    @abstractmethod
    def from_spec(
        cls, spec: TriggerSpec, *, context: ScalerContext, ignore: Collection[str] = ()
    ) -> Scaler:
        """Validate ``spec`` and build a scaler; no I/O happens until ``measure()``."""

    @abstractmethod
    async def measure(self) -> Measurement:
        """Ask the upstream once; raise an ``UpstreamError`` when that gives no number."""

    async def close(self) -> None:  # noqa: B027 - most scalers hold nothing to release
        """Release what the scaler holds (sessions, connections). Idempotent."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.metric_name}>"


class SpecConfig(Protocol):
    """A scaler's validated settings, parsed from a trigger spec."""

    @classmethod
    def parse(cls, spec: TriggerSpec, *, ignore: Collection[str] = ()) -> Self:
        """The settings of ``spec``; ``ConfigError`` naming the first bad key otherwise."""
        ...


ConfigT = TypeVar("ConfigT", bound=SpecConfig)


class ConfiguredScaler(Scaler, Generic[ConfigT]):
    """A scaler built from one config type: it declares ``config_type`` and an ``__init__``
    taking that config and the context; validating and building from a spec come from here."""

    config_type: ClassVar[type[SpecConfig]]
    """The ``ConfigT`` class; its ``parse`` is the whole validation."""
    config: ConfigT

    def __init__(self, config: ConfigT, *, context: ScalerContext) -> None:
        self.config = config
        self._context = context

    @classmethod
    def parse_config(cls, spec: TriggerSpec, *, ignore: Collection[str] = ()) -> ConfigT:
        # ClassVars cannot name a type variable; config_type is ConfigT's class by contract.
        return cast("ConfigT", cls.config_type.parse(spec, ignore=ignore))

    @classmethod
    def validate(cls, spec: TriggerSpec, *, ignore: Collection[str] = ()) -> None:
        cls.parse_config(spec, ignore=ignore)

    @classmethod
    def from_spec(
        cls, spec: TriggerSpec, *, context: ScalerContext, ignore: Collection[str] = ()
    ) -> Self:
        return cls(cls.parse_config(spec, ignore=ignore), context=context)


_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def dns_safe_name(raw: str, *, max_length: int = METRIC_NAME_MAX) -> str:
    """``raw`` lowercased, with runs of other characters turned into ``-``, as a DNS label.

    Names longer than ``max_length`` are cut and end in a digest of the whole ``raw``, so they
    stay distinct and stable.
    """
    name = _NOT_DNS.sub("-", raw.lower()).strip("-") or "metric"
    if len(name) > max_length:
        digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        name = f"{name[: max_length - 9].rstrip('-')}-{digest}"
    return name
