"""``MetricCache``: the one place deciding when an upstream is asked, shared by both front doors.

Per spec identity it keeps one scaler and the last outcome. A value is fresh for the asker's
polling interval, and never past its own ``valid_until`` (a cron value ends at the next
edge); concurrent askers of a stale key share one upstream call (single-flight, with the call
shielded from any one asker's cancellation or deadline). A failed call is also an
outcome, so an upstream is asked at most once per polling interval whether it works or not. While
failing, the last good value is served while younger than the staleness bound; once
``failure_threshold`` consecutive calls have failed the fallback applies (a value, or the error).
Every failure counts, unreachable upstreams included: KEDA's external scaler never falls back when
the scaler cannot be reached (kedacore/keda#8056); here there is one path and it counts.

Idle keys are evicted by ``evict_idle()`` (and a sweeper between ``start()`` and ``close()``),
the least recently asked key when ``max_keys`` is reached; evicted scalers are closed.
This module talks to no upstream itself and does not log auth values.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Collection, Coroutine
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from kits import Clock, SystemClock
from scalers.base import Measurement, Scaler, ScalerContext
from scalers.errors import ScalerError, UnavailableError, UpstreamError
from scalers.registry import Registry, default_registry
from scalers.sessions import SessionPool
from scalers.spec import SpecIdentity, TriggerSpec

__all__ = ["CacheMetrics", "CacheSettings", "Fallback", "MetricCache", "TriggerPolicy"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Fallback:
    """What to serve once an upstream keeps failing (``MetricSource.spec.fallback``)."""

    failure_threshold: int = 3
    """Consecutive failed upstream calls after which the fallback applies. 3, as in KEDA's
    examples: one failure is a blip, three polling intervals is an outage. (KEDA switches when the
    count is *above* the threshold; here it switches when the count reaches it.)"""
    value: float | None = None
    """The metric value to serve; ``None`` serves the last error instead, so the HPA holds."""

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")


@dataclass(frozen=True, slots=True)
class TriggerPolicy:
    """Per-trigger cache behaviour that is not KEDA metadata; passed with the spec on each ask."""

    polling_interval: float = 30.0
    """Seconds a value (or a failure) stays fresh. 30 s is KEDA's default ``pollingInterval``
    and twice the HPA's 15 s sync, so an upstream sees one query per interval."""
    staleness_bound: float = 120.0
    """Seconds the last good value may still be served while the upstream fails: long enough to
    ride out a Prometheus restart, short enough that the HPA does not act on a different load."""
    fallback: Fallback | None = None
    """``None``: no fallback; stale values until the bound, then the error."""

    def __post_init__(self) -> None:
        if self.polling_interval <= 0:
            raise ValueError("polling_interval must be positive")
        if self.staleness_bound < 0:
            raise ValueError("staleness_bound must not be negative")


TRIGGER_LABELS_MAX = 500
"""Distinct ``trigger`` label values the per-trigger series may take; later triggers share
``other``. 500 keeps a scrape of a busy cluster small (two series each) while naming every
trigger of a typical one."""

OTHER_TRIGGERS = "other"


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """Process-wide cache settings."""

    max_keys: int = 10_000
    """Hard cap on cached triggers; the least recently asked goes first. 10,000 is ten times the
    ScaledObject counts where KEDA users report trouble, at about a few KB per key."""
    idle_intervals: float = 10.0
    """A key not asked for this many of its polling intervals is evicted: the HPA asks every 15 s
    and KEDA every polling interval, so ten missed intervals means nobody is asking any more."""
    sweep_interval: float = 60.0
    """Seconds between sweeps for idle keys once ``start()`` has been called."""
    max_trigger_labels: int = TRIGGER_LABELS_MAX
    """Distinct triggers the per-trigger series name before the rest share ``other``."""
    upstream_grace: float = 1.0
    """Seconds the cache waits beyond a scaler's own ``timeout`` before abandoning its call."""


def trigger_label(spec: TriggerSpec, metric_name: str) -> str:
    """``<metric name>@<digest>``: readable, and distinct for triggers that share a metric name
    but differ in address or auth (the digest covers the identity, whose auth part is itself a
    keyed digest, so no secret can be recovered from it)."""
    digest = hashlib.sha256(repr(spec.identity).encode()).hexdigest()[:8]
    return f"{metric_name}@{digest}"


class CacheMetrics:
    """The cache's Prometheus metrics, on an injectable registry."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        max_trigger_labels: int = TRIGGER_LABELS_MAX,
    ) -> None:
        registry = REGISTRY if registry is None else registry
        self._max_trigger_labels = max_trigger_labels
        self._trigger_labels: set[str] = set()
        self.trigger_calls = Counter(
            "updraft_scaler_trigger_upstream_calls",
            "Upstream calls, by trigger (<metric name>@<digest of the trigger>; 'other' past "
            f"{max_trigger_labels} triggers): the fan-in is the asks over these.",
            ["trigger"],
            registry=registry,
        )
        self.trigger_errors = Counter(
            "updraft_scaler_trigger_upstream_errors",
            "Failed upstream calls, by trigger (as updraft_scaler_trigger_upstream_calls).",
            ["trigger"],
            registry=registry,
        )
        self.trigger_asks = Counter(
            "updraft_scaler_trigger_asks",
            "Asks for a trigger's value from either front door, cached or not, by trigger.",
            ["trigger"],
            registry=registry,
        )
        self.upstream_calls = Counter(
            "updraft_scaler_upstream_calls",
            "Upstream calls made by scalers, by scaler type.",
            ["type"],
            registry=registry,
        )
        self.upstream_errors = Counter(
            "updraft_scaler_upstream_errors",
            "Failed upstream calls, by scaler type and error class.",
            ["type", "error"],
            registry=registry,
        )
        self.upstream_latency = Histogram(
            "updraft_scaler_upstream_latency_seconds",
            "Duration of upstream calls, by scaler type.",
            ["type"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )
        self.hits = Counter(
            "updraft_scaler_cache_hits",
            "Asks answered from the cache without waiting on an upstream call.",
            ["type"],
            registry=registry,
        )
        self.misses = Counter(
            "updraft_scaler_cache_misses",
            "Asks that started or joined an upstream call.",
            ["type"],
            registry=registry,
        )
        self.stale = Counter(
            "updraft_scaler_cache_stale_served",
            "Asks answered with the last good value while the upstream fails.",
            ["type"],
            registry=registry,
        )
        self.fallbacks = Counter(
            "updraft_scaler_cache_fallbacks",
            "Asks answered with the configured fallback value.",
            ["type"],
            registry=registry,
        )
        self.evictions = Counter(
            "updraft_scaler_cache_evictions",
            "Keys evicted, by reason (idle, capacity).",
            ["reason"],
            registry=registry,
        )
        self.keys = Gauge(
            "updraft_scaler_cache_keys", "Triggers currently cached.", registry=registry
        )

    def label_for(self, label: str) -> str:
        """``label``, or ``other`` once the cap of distinct trigger labels is reached."""
        if label in self._trigger_labels:
            return label
        if len(self._trigger_labels) >= self._max_trigger_labels:
            return OTHER_TRIGGERS
        self._trigger_labels.add(label)
        return label


@dataclass(slots=True, eq=False)
class _Entry:
    scaler: Scaler
    type_name: str
    trigger: str
    """The ``trigger`` label of the per-trigger series."""
    asks: Counter
    """``trigger_asks`` and ``hits`` bound to this entry's labels once, not on every ask."""
    hits: Counter
    last_good: Measurement | None = None
    good_at: float = 0.0
    """Monotonic time of ``last_good``."""
    attempted_at: float | None = None
    """Monotonic time the last upstream call finished, good or bad."""
    failures: int = 0
    last_error: ScalerError | None = None
    on_fallback: bool = False
    """The fallback value is being served: logged once when that starts and once when it ends."""
    inflight: asyncio.Task[None] | None = None
    last_asked: float = 0.0
    idle_after: float = 0.0


_DEFAULT_POLICY = TriggerPolicy()


class MetricCache:
    """See the module docstring. Use one per process; ``close()`` it."""

    def __init__(
        self,
        *,
        registry: Registry | None = None,
        clock: Clock | None = None,
        settings: CacheSettings | None = None,
        metrics_registry: CollectorRegistry | None = None,
        sessions: SessionPool | None = None,
        ignore: Collection[str] = (),
    ) -> None:
        """``ignore``: metadata keys every scaler accepts and skips (``KEDA_EXTERNAL_KEYS``)."""
        self._registry = registry if registry is not None else default_registry()
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._settings = settings if settings is not None else CacheSettings()
        self.metrics = CacheMetrics(
            metrics_registry, max_trigger_labels=self._settings.max_trigger_labels
        )
        self._owns_sessions = sessions is None
        self._sessions = sessions if sessions is not None else SessionPool()
        self._context = ScalerContext(clock=self._clock, sessions=self._sessions)
        self._ignore = frozenset(ignore)
        self._entries: OrderedDict[SpecIdentity, _Entry] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._entries)

    # -- asking -----------------------------------------------------------------------------

    async def get(
        self,
        spec: TriggerSpec,
        policy: TriggerPolicy = _DEFAULT_POLICY,
        *,
        budget: float | None = None,
    ) -> Measurement:
        """The trigger's current measurement, asking the upstream at most once per interval.

        ``budget`` is the caller's time limit in seconds: when the upstream call would outlast it,
        the stale value (within the bound) or the fallback is served, or ``UnavailableError``
        raised; the call itself goes on for later askers. Raises ``ConfigError`` for a bad spec
        and the upstream's ``UpstreamError`` when neither a stale value nor a fallback applies.
        """
        entry = self._entry(spec, policy)
        entry.asks.inc()
        if self._fresh(entry, policy):
            entry.hits.inc()
            return self._serve(entry, policy)
        self.metrics.misses.labels(entry.type_name).inc()
        task = entry.inflight
        if task is None:
            task = self._spawn(self._refresh(entry))
            entry.inflight = task
        try:
            async with asyncio.timeout(budget):
                # The shield keeps one asker's cancellation or deadline from cancelling the call
                # every other asker is waiting on.
                await asyncio.shield(task)
        except TimeoutError:
            late = UnavailableError(
                f"{entry.scaler.metric_name}: upstream gave no answer within {budget:g}s"
            )
            return self._serve(entry, policy, pending=late)
        return self._serve(entry, policy)

    def _fresh(self, entry: _Entry, policy: TriggerPolicy) -> bool:
        """Asked within the polling interval, and the last value has not passed its own
        ``valid_until`` (a cron edge): a value never outlives what it knows about itself."""
        if entry.attempted_at is None:
            return False
        if self._clock.monotonic() - entry.attempted_at >= policy.polling_interval:
            return False
        good = entry.last_good
        if entry.failures == 0 and good is not None and good.valid_until is not None:
            return self._clock.now() < good.valid_until
        return True

    def seconds_fresh(self, spec: TriggerSpec, policy: TriggerPolicy = _DEFAULT_POLICY) -> float:
        """Seconds until the trigger's cached value goes stale (0 when it is stale or there is
        none): what a stream that re-reads the cache should sleep."""
        entry = self._entry(spec, policy)
        if not self._fresh(entry, policy):
            return 0.0
        assert entry.attempted_at is not None  # _fresh checked it
        left = policy.polling_interval - (self._clock.monotonic() - entry.attempted_at)
        good = entry.last_good
        if entry.failures == 0 and good is not None and good.valid_until is not None:
            left = min(left, (good.valid_until - self._clock.now()).total_seconds())
        return max(0.0, left)

    def scaler_for(self, spec: TriggerSpec, policy: TriggerPolicy = _DEFAULT_POLICY) -> Scaler:
        """The shared scaler for ``spec``, for its ``metric_name`` and targets.

        Do not keep it or call ``measure()`` on it: the cache closes it when the key is evicted.
        """
        return self._entry(spec, policy).scaler

    def _entry(self, spec: TriggerSpec, policy: TriggerPolicy) -> _Entry:
        if self._closed:
            raise RuntimeError("MetricCache is closed")
        key = spec.identity
        entry = self._entries.get(key)
        if entry is None:
            scaler = self._registry.build(spec, context=self._context, ignore=self._ignore)
            label = self.metrics.label_for(trigger_label(spec, scaler.metric_name))
            entry = _Entry(
                scaler=scaler,
                type_name=spec.type,
                trigger=label,
                asks=self.metrics.trigger_asks.labels(label),
                hits=self.metrics.hits.labels(spec.type),
            )
            self._entries[key] = entry
            while len(self._entries) > self._settings.max_keys:
                _, victim = self._entries.popitem(last=False)
                self.metrics.evictions.labels("capacity").inc()
                _ = self._spawn(self._retire(victim))
            self.metrics.keys.set(len(self._entries))
        else:
            self._entries.move_to_end(key)
        entry.last_asked = self._clock.monotonic()
        entry.idle_after = policy.polling_interval * self._settings.idle_intervals
        return entry

    def _serve(
        self, entry: _Entry, policy: TriggerPolicy, *, pending: ScalerError | None = None
    ) -> Measurement:
        if entry.failures == 0 and pending is None and entry.last_good is not None:
            return entry.last_good
        fallback = policy.fallback
        if fallback is not None and entry.failures >= fallback.failure_threshold:
            if fallback.value is not None:
                self.metrics.fallbacks.labels(entry.type_name).inc()
                value = fallback.value
                if not entry.on_fallback:
                    entry.on_fallback = True
                    logger.warning(
                        "serving the fallback value %g after %d failed queries in a row",
                        value,
                        entry.failures,
                        extra={"scaler_type": entry.type_name, "metric": entry.scaler.metric_name},
                    )
                active = value > entry.scaler.activation_target
                return Measurement(value=value, active=active, at=self._clock.now())
        else:
            age = self._clock.monotonic() - entry.good_at
            if entry.last_good is not None and age <= policy.staleness_bound:
                self.metrics.stale.labels(entry.type_name).inc()
                return entry.last_good
        error = pending or entry.last_error
        if error is None:  # pragma: no cover - a finished call leaves a value or an error
            error = UnavailableError(f"{entry.scaler.metric_name}: no value yet")
        # Many askers raise the same error object; drop the traceback so it does not grow.
        raise error.with_traceback(None)

    # -- upstream calls ---------------------------------------------------------------------

    async def _refresh(self, entry: _Entry) -> None:
        scaler = entry.scaler
        kind = entry.type_name
        self.metrics.upstream_calls.labels(kind).inc()
        self.metrics.trigger_calls.labels(entry.trigger).inc()
        started = self._clock.monotonic()
        measurement: Measurement | None = None
        error: ScalerError | None = None
        budget = scaler.timeout + self._settings.upstream_grace
        try:
            async with asyncio.timeout(budget):
                measurement = await scaler.measure()
        except TimeoutError:
            error = UnavailableError(f"{scaler.metric_name}: no answer within {budget:g}s")
        except ScalerError as failure:
            error = failure
        except Exception as failure:
            # A bug in a scaler must not take the cache down; its text may hold anything, so
            # only the class is kept.
            error = UpstreamError(f"{scaler.metric_name}: scaler failed: {type(failure).__name__}")
            logger.error("scaler %s raised %s", scaler.metric_name, type(failure).__name__)
        finally:
            entry.inflight = None
        now = self._clock.monotonic()
        self.metrics.upstream_latency.labels(kind).observe(now - started)
        entry.attempted_at = now
        if measurement is not None:
            if entry.on_fallback:
                entry.on_fallback = False
                logger.info(
                    "the upstream answers again: the fallback value is no longer served",
                    extra={"scaler_type": kind, "metric": scaler.metric_name},
                )
            entry.last_good = measurement
            entry.good_at = now
            entry.failures = 0
            entry.last_error = None
            return
        assert error is not None
        entry.failures += 1
        entry.last_error = error
        self.metrics.upstream_errors.labels(kind, type(error).__name__).inc()
        self.metrics.trigger_errors.labels(entry.trigger).inc()
        logger.warning(
            "upstream call failed (%d in a row): %s",
            entry.failures,
            error,
            extra={"scaler_type": kind, "metric_name": scaler.metric_name},
        )

    # -- lifecycle --------------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _retire(self, entry: _Entry) -> None:
        if entry.inflight is not None:
            await asyncio.wait([entry.inflight])
        try:
            await entry.scaler.close()
        except Exception as failure:
            logger.warning(
                "closing scaler %s failed: %s", entry.scaler.metric_name, type(failure).__name__
            )

    async def evict_idle(self) -> int:
        """Close and forget keys nobody asked for in ``idle_intervals`` polling intervals."""
        now = self._clock.monotonic()
        idle = [
            key
            for key, entry in self._entries.items()
            if entry.inflight is None and now - entry.last_asked > entry.idle_after
        ]
        for key in idle:
            entry = self._entries.pop(key)
            self.metrics.evictions.labels("idle").inc()
            await self._retire(entry)
        self.metrics.keys.set(len(self._entries))
        return len(idle)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._settings.sweep_interval)
            try:
                await self.evict_idle()
            except Exception:
                logger.exception("idle sweep failed")

    async def start(self) -> None:
        """Start the idle sweeper."""
        if self._sweeper is None and not self._closed:
            self._sweeper = asyncio.create_task(self._sweep(), name="metric-cache-sweeper")

    async def close(self) -> None:
        """Stop the sweeper and in-flight calls, close every scaler and owned sessions."""
        if self._closed:
            return
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        entries = list(self._entries.values())
        self._entries.clear()
        self.metrics.keys.set(0)
        for entry in entries:
            if entry.inflight is not None:
                entry.inflight.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for entry in entries:
            await self._retire(entry)
        if self._owns_sessions:
            await self._sessions.close()
