"""The `externalscaler.ExternalScaler` RPCs, answered through the shared `MetricCache`.

Owns turning a `ScaledObjectRef` into a `TriggerSpec`, mapping `scalers` errors onto gRPC status
codes, honouring the caller's deadline, and the two server streams. It must not measure anything
itself: every number comes from the cache, so a burst of KEDA calls for one trigger is one
upstream query per polling interval.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Mapping

import grpc

from scalers._pb import externalscaler_pb2 as pb
from scalers._pb import externalscaler_pb2_grpc as pb_grpc
from scalers.base import Measurement
from scalers.cache import MetricCache, TriggerPolicy
from scalers.errors import ConfigError, ScalerError, UpstreamError
from scalers.metadata import KEDA_EXTERNAL_KEYS
from scalers.spec import TriggerSpec

SCALER_TYPE_KEY = "scalerType"
METRIC_SOURCE_KEY = "metricSourceRef"
OWN_KEYS = frozenset({SCALER_TYPE_KEY}) | KEDA_EXTERNAL_KEYS
"""Keys consumed by KEDA or by this front door; they never reach a scaler's validation."""

DEFAULT_POLICY = TriggerPolicy()
"""KEDA sends no polling interval: its default (30 s) and no fallback, as for a bare trigger."""

DEADLINE_MARGIN = 0.1
"""Seconds kept back from the caller's deadline to build and send the answer."""


def spec_from_metadata(metadata: Mapping[str, str], *, known_types: tuple[str, ...]) -> TriggerSpec:
    """The trigger KEDA forwarded, as a spec: `scalerType` picks the scaler, the rest is its
    metadata. KEDA forwards no TriggerAuthentication values, so auth is empty."""
    if METRIC_SOURCE_KEY in metadata:
        raise ConfigError(
            METRIC_SOURCE_KEY,
            metadata[METRIC_SOURCE_KEY],
            "inline scaler metadata (MetricSource references arrive with the MetricSource CRD)",
        )
    scaler_type = metadata.get(SCALER_TYPE_KEY)
    if scaler_type not in known_types:
        raise ConfigError(
            SCALER_TYPE_KEY,
            scaler_type,
            f"one of the Updraft scaler types: {', '.join(known_types)}",
        )
    rest = {k: v for k, v in metadata.items() if k not in OWN_KEYS}
    return TriggerSpec(type=scaler_type, metadata=rest)


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
    ) -> None:
        self._cache = cache
        self._types = known_types
        self._policy = policy

    # -- helpers -----------------------------------------------------------------------------

    async def _spec(
        self, ref: pb.ScaledObjectRef, context: grpc.aio.ServicerContext
    ) -> TriggerSpec:
        try:
            spec = spec_from_metadata(dict(ref.scalerMetadata), known_types=self._types)
            self._cache.scaler_for(spec, self._policy)  # validates the metadata, no I/O
        except ConfigError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"scalerMetadata.{e}")
        return spec

    async def _measure(self, spec: TriggerSpec, context: grpc.aio.ServicerContext) -> Measurement:
        remaining = context.time_remaining()
        budget = None if remaining is None else max(0.0, remaining - DEADLINE_MARGIN)
        try:
            return await self._cache.get(spec, self._policy, budget=budget)
        except ConfigError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"scalerMetadata.{e}")
        except UpstreamError as e:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(e))
        except ScalerError as e:
            await context.abort(grpc.StatusCode.INTERNAL, str(e))
        raise AssertionError("unreachable: context.abort raises")

    def _metric_spec(self, spec: TriggerSpec) -> pb.GetMetricSpecResponse:
        scaler = self._cache.scaler_for(spec, self._policy)
        return pb.GetMetricSpecResponse(
            metricSpecs=[
                pb.MetricSpec(
                    metricName=scaler.metric_name,
                    targetSize=_target_for_old_keda(scaler.target),
                    targetSizeFloat=scaler.target,
                )
            ]
        )

    # -- RPCs ----------------------------------------------------------------------------------

    async def IsActive(  # noqa: N802 - the contract's name
        self, request: pb.ScaledObjectRef, context: grpc.aio.ServicerContext
    ) -> pb.IsActiveResponse:
        spec = await self._spec(request, context)
        measurement = await self._measure(spec, context)
        return pb.IsActiveResponse(result=measurement.active)

    async def GetMetricSpec(  # noqa: N802
        self, request: pb.ScaledObjectRef, context: grpc.aio.ServicerContext
    ) -> pb.GetMetricSpecResponse:
        spec = await self._spec(request, context)
        return self._metric_spec(spec)

    async def GetMetrics(  # noqa: N802
        self, request: pb.GetMetricsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetMetricsResponse:
        spec = await self._spec(request.scaledObjectRef, context)
        name = self._cache.scaler_for(spec, self._policy).metric_name
        # Older KEDA sent lowercased names; the HPA lowercases them too.
        if request.metricName.lower() != name.lower():
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"metricName {request.metricName!r} is not served by this trigger "
                f"(its metric is {name!r})",
            )
        measurement = await self._measure(spec, context)
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
        interval. Streams for the same trigger share the cached measurement."""
        spec = await self._spec(request, context)
        last: bool | None = None
        while True:
            try:
                measurement = await self._cache.get(spec, self._policy)
            except UpstreamError:
                # A push stream reports changes, not outages: the pull path (IsActive /
                # GetMetrics) reports the error; keep the stream and try again next interval.
                measurement = None
            if measurement is not None and measurement.active != last:
                last = measurement.active
                yield pb.IsActiveResponse(result=last)
            await asyncio.sleep(self._policy.polling_interval)

    async def StreamMetricSpec(  # noqa: N802
        self, request: pb.ScaledObjectRef, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.GetMetricSpecResponse]:
        """The spec at once, as the contract asks; a trigger's spec is a function of its
        metadata, which cannot change within one stream, so nothing follows until KEDA closes
        it."""
        spec = await self._spec(request, context)
        yield self._metric_spec(spec)
        await asyncio.Event().wait()
