"""The `externalscaler.ExternalScaler` RPCs, answered through the shared `MetricCache`.

Owns turning a `ScaledObjectRef` into a `TriggerSpec`, mapping `scalers` errors onto gRPC status
codes, honouring the caller's deadline, and the two server streams. It must not measure anything
itself: every number comes from the cache, so a burst of KEDA calls for one trigger is one
upstream query per polling interval.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import grpc

from keda._pb import externalscaler_pb2 as pb
from keda._pb import externalscaler_pb2_grpc as pb_grpc
from scalers import (
    KEDA_EXTERNAL_KEYS,
    ConfigError,
    Measurement,
    MetricCache,
    ScalerError,
    TriggerPolicy,
    TriggerSpec,
    UpstreamError,
)

SCALER_TYPE_KEY = "scalerType"
METRIC_SOURCE_KEY = "metricSourceRef"
OWN_KEYS = frozenset({SCALER_TYPE_KEY}) | KEDA_EXTERNAL_KEYS
"""Keys consumed by KEDA or by this front door; they never reach a scaler's validation."""

DEFAULT_POLICY = TriggerPolicy()
"""KEDA sends no polling interval: its default (30 s) and no fallback, as for a bare trigger."""

PLACEHOLDER_TARGET = 1.0
"""The target of the metric spec answered for a trigger whose metadata is bad: KEDA drops a
GetMetricSpec error into its log (the ScaledObject shows only "no metric specs returned from
scalers"), while an IsActive/GetMetrics error becomes a `KEDAScalerFailed` Event. So the spec
is answered and every value call fails with the reason. Fixing the metadata changes the
ScaledObject, and KEDA reads the spec again, with the real target."""

DEADLINE_MARGIN = 0.1
"""Seconds kept back from the caller's deadline to build and send the answer."""

PARSED_MAX = 10_000
"""Inline triggers whose checked form is kept, as many as the cache keeps triggers
(`CacheSettings.max_keys`): KEDA sends the same metadata on every call, and parsing and
validating it again each time cost more than answering from the cache."""


class TriggerSources(Protocol):
    """Named triggers KEDA may point at with `metricSourceRef` (the adapter's MetricSources)."""

    def trigger_for(
        self, namespace: str, name: str
    ) -> tuple[str, TriggerSpec, TriggerPolicy] | None:
        """The source's own name (its spelling; `name` matches it as the metrics API matches
        metric names), its trigger and policy; None when there is no such source. Raises
        `ValueError` saying why when the source exists but cannot be served."""
        ...


@dataclass(frozen=True)
class Resolved:
    spec: TriggerSpec
    policy: TriggerPolicy
    source: str | None = None
    """The MetricSource a `metricSourceRef` named: KEDA sees its name as the metric name."""


@dataclass(frozen=True, slots=True)
class _Checked:
    """A trigger resolved and validated, with the metric name KEDA knows it by."""

    trigger: Resolved
    metric_name: str


MetadataKey = frozenset[tuple[str, str]]
"""A ref's `scalerMetadata` as a key: KEDA (Go) sends map entries in no fixed order."""


class UnservableSourceError(ConfigError):
    """`metricSourceRef` names a MetricSource this server cannot serve (it is invalid, or the
    server has no MetricSources): the fix lies outside the ScaledObject."""


class SourceNotFoundError(LookupError):
    """`metricSourceRef` names a MetricSource that does not exist in the ScaledObject's
    namespace."""


def spec_from_metadata(metadata: Mapping[str, str], *, known_types: tuple[str, ...]) -> TriggerSpec:
    """The trigger KEDA forwarded, as a spec: `scalerType` picks the scaler, the rest is its
    metadata. KEDA forwards no TriggerAuthentication values, so auth is empty."""
    scaler_type = metadata.get(SCALER_TYPE_KEY)
    if scaler_type not in known_types:
        raise ConfigError(
            SCALER_TYPE_KEY,
            scaler_type,
            f"one of the Updraft scaler types: {', '.join(known_types)}",
        )
    rest = {k: v for k, v in metadata.items() if k not in OWN_KEYS}
    return TriggerSpec(type=scaler_type, metadata=rest)


def placeholder_name(metadata: Mapping[str, str]) -> str:
    """The metric name for a trigger with bad metadata: stable for the same metadata, distinct
    for two bad triggers of one ScaledObject (KEDA rejects duplicate names)."""
    digest = hashlib.sha256(
        "\0".join(f"{k}={v}" for k, v in sorted(metadata.items())).encode()
    ).hexdigest()[:10]
    return f"updraft-invalid-{digest}"


def _rounded(x: float) -> int:
    """KEDA before 2.17 reads only the int64 fields: round half up; NaN/Inf become 0, as
    KEDA 2.20.2 does for the float fields."""
    return math.floor(x + 0.5) if math.isfinite(x) else 0


def _target_for_old_keda(target: float) -> int:
    """A positive target stays at least 1, so an old KEDA never divides by a zero target."""
    return max(_rounded(target), 1) if target > 0 else _rounded(target)


class ExternalScalerService(pb_grpc.ExternalScalerServicer):
    """The five RPCs of KEDA's contract over one `MetricCache`."""

    def __init__(
        self,
        cache: MetricCache,
        *,
        known_types: tuple[str, ...],
        policy: TriggerPolicy = DEFAULT_POLICY,
        sources: TriggerSources | None = None,
    ) -> None:
        self._cache = cache
        self._types = known_types
        self._policy = policy
        self._sources = sources
        self._parsed: dict[MetadataKey, _Checked] = {}
        """Inline triggers already checked: they depend on nothing but their metadata. A
        `metricSourceRef` is resolved on every call, as its MetricSource may change."""

    def resolve(self, ref: pb.ScaledObjectRef) -> Resolved:
        """The trigger a ScaledObjectRef asks for: inline metadata, or a `metricSourceRef` to a
        MetricSource in the ScaledObject's namespace (its policy and auth come with it). Raises
        `ConfigError` naming the key, or `SourceNotFoundError`."""
        metadata = dict(ref.scalerMetadata)
        source = metadata.get(METRIC_SOURCE_KEY)
        if source is None:
            spec = spec_from_metadata(metadata, known_types=self._types)
            return Resolved(spec, self._policy)
        inline = sorted(set(metadata) - OWN_KEYS - {METRIC_SOURCE_KEY})
        if inline or SCALER_TYPE_KEY in metadata:
            extra = ", ".join(
                [*([SCALER_TYPE_KEY] if SCALER_TYPE_KEY in metadata else []), *inline]
            )
            raise ConfigError(
                METRIC_SOURCE_KEY,
                source,
                f"either metricSourceRef or inline metadata, not both ({extra})",
            )
        if self._sources is None:
            raise UnservableSourceError(
                METRIC_SOURCE_KEY,
                source,
                "inline metadata: this server has no MetricSources (run the metrics API with a "
                "cluster or --standalone-config)",
            )
        try:
            found = self._sources.trigger_for(ref.namespace, source)
        except ValueError as e:
            raise UnservableSourceError(
                METRIC_SOURCE_KEY, source, f"a servable MetricSource ({e})"
            ) from None
        if found is None:
            raise SourceNotFoundError(f"MetricSource {ref.namespace}/{source} does not exist")
        name, spec, policy = found
        return Resolved(spec, policy, source=name)

    # -- helpers -----------------------------------------------------------------------------

    def _check(self, ref: pb.ScaledObjectRef) -> _Checked:
        """`resolve()` and validate (no I/O), remembering inline triggers. Raises as
        `resolve()` does, or `ConfigError` from the scaler's validation."""
        key: MetadataKey = frozenset(ref.scalerMetadata.items())
        checked = self._parsed.get(key)
        if checked is not None:
            return checked
        t = self.resolve(ref)
        scaler = self._cache.scaler_for(t.spec, t.policy)  # validates, no I/O
        checked = _Checked(t, t.source or scaler.metric_name)
        if t.source is None:
            if len(self._parsed) >= PARSED_MAX:
                del self._parsed[next(iter(self._parsed))]  # the oldest
            self._parsed[key] = checked
        return checked

    async def _resolve(
        self, ref: pb.ScaledObjectRef, context: grpc.aio.ServicerContext
    ) -> _Checked:
        try:
            return self._check(ref)
        except ConfigError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"scalerMetadata.{e}")
        except SourceNotFoundError as e:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(e))
        raise AssertionError("unreachable: context.abort raises")

    async def _measure(self, t: Resolved, context: grpc.aio.ServicerContext) -> Measurement:
        remaining = context.time_remaining()
        budget = None if remaining is None else max(0.0, remaining - DEADLINE_MARGIN)
        try:
            return await self._cache.get(t.spec, t.policy, budget=budget)
        except ConfigError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"scalerMetadata.{e}")
        except UpstreamError as e:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(e))
        except ScalerError as e:
            await context.abort(grpc.StatusCode.INTERNAL, str(e))
        raise AssertionError("unreachable: context.abort raises")

    def _metric_spec(self, c: _Checked) -> pb.GetMetricSpecResponse:
        """A MetricSource is named by its name, as the metrics API names it; an inline
        trigger by its scaler's name (a function of the metadata)."""
        scaler = self._cache.scaler_for(c.trigger.spec, c.trigger.policy)
        return pb.GetMetricSpecResponse(
            metricSpecs=[
                pb.MetricSpec(
                    metricName=c.metric_name,
                    targetSize=_target_for_old_keda(scaler.target),
                    targetSizeFloat=scaler.target,
                )
            ]
        )

    # -- RPCs ----------------------------------------------------------------------------------

    async def IsActive(  # noqa: N802 - the contract's name
        self, request: pb.ScaledObjectRef, context: grpc.aio.ServicerContext
    ) -> pb.IsActiveResponse:
        c = await self._resolve(request, context)
        measurement = await self._measure(c.trigger, context)
        return pb.IsActiveResponse(result=measurement.active)

    async def _spec_or_placeholder(
        self, request: pb.ScaledObjectRef, context: grpc.aio.ServicerContext
    ) -> pb.GetMetricSpecResponse:
        """The trigger's spec; for bad inline metadata a placeholder spec (see
        `PLACEHOLDER_TARGET`), so KEDA builds the HPA and shows the value calls' errors. A
        `metricSourceRef` to a missing or invalid MetricSource still fails here: fixing the
        MetricSource does not change the ScaledObject, so a placeholder target would stay."""
        try:
            c = self._check(request)
        except UnservableSourceError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"scalerMetadata.{e}")
        except ConfigError:
            return pb.GetMetricSpecResponse(
                metricSpecs=[
                    pb.MetricSpec(
                        metricName=placeholder_name(request.scalerMetadata),
                        targetSize=_target_for_old_keda(PLACEHOLDER_TARGET),
                        targetSizeFloat=PLACEHOLDER_TARGET,
                    )
                ]
            )
        except SourceNotFoundError as e:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(e))
        return self._metric_spec(c)

    async def GetMetricSpec(  # noqa: N802
        self, request: pb.ScaledObjectRef, context: grpc.aio.ServicerContext
    ) -> pb.GetMetricSpecResponse:
        return await self._spec_or_placeholder(request, context)

    async def GetMetrics(  # noqa: N802
        self, request: pb.GetMetricsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetMetricsResponse:
        ref = request.scaledObjectRef
        # A checked inline trigger is answered without another coroutine to resolve it.
        c = self._parsed.get(frozenset(ref.scalerMetadata.items()))
        if c is None:
            c = await self._resolve(ref, context)
        name = c.metric_name
        # Older KEDA sent lowercased names; the HPA lowercases them too.
        if request.metricName != name and request.metricName.lower() != name.lower():
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"metricName {request.metricName!r} is not served by this trigger "
                f"(its metric is {name!r})",
            )
        measurement = await self._measure(c.trigger, context)
        return pb.GetMetricsResponse(
            metricValues=[
                pb.MetricValue(
                    metricName=request.metricName,
                    metricValue=_rounded(measurement.value),
                    metricValueFloat=measurement.value,
                )
            ]
        )

    async def StreamIsActive(  # noqa: N802
        self, request: pb.ScaledObjectRef, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.IsActiveResponse]:
        """One message at the start and one whenever activity changes, checked every polling
        interval, or at the cached value's end (a cron edge) when that comes first. Streams for
        the same trigger share the cached measurement."""
        t = (await self._resolve(request, context)).trigger
        last: bool | None = None
        while True:
            try:
                measurement = await self._cache.get(t.spec, t.policy)
            except UpstreamError:
                # A push stream reports changes, not outages: the pull path (IsActive /
                # GetMetrics) reports the error; keep the stream and try again next interval.
                measurement = None
            if measurement is not None and measurement.active != last:
                last = measurement.active
                yield pb.IsActiveResponse(result=last)
            # Until the cached value goes stale: a cron edge comes before the interval ends.
            fresh = self._cache.seconds_fresh(t.spec, t.policy)
            await asyncio.sleep(fresh if fresh > 0 else t.policy.polling_interval)

    async def StreamMetricSpec(  # noqa: N802
        self, request: pb.ScaledObjectRef, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.GetMetricSpecResponse]:
        """The spec at once, as the contract asks; a trigger's spec is a function of its
        metadata, which cannot change within one stream, so nothing follows until KEDA closes
        it."""
        yield await self._spec_or_placeholder(request, context)
        await asyncio.Event().wait()
