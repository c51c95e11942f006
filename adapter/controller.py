"""The MetricSource controller: MetricSource objects in the cluster become served metrics.

Owns watching `metricsources.updraft.io` (through a `kube` informer), resolving each one's
`authRef` Secret into auth values, feeding `MetricSourceProvider`, and reporting back on the
object: `status` (last value, active, last error, a `Ready` condition) and Events. A bad object
gets `Ready=False` and a Warning Event naming the field; every other object keeps being served.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from adapter.metricsources import (
    InvalidMetricSourceError,
    MetricSource,
    MetricSourceProvider,
    parse,
    validate,
)
from adapter.quantity import format_metric_value
from kits import Clock, SystemClock, cancel_and_wait, format_rfc3339
from kube import (
    SECRETS,
    Api,
    ApiError,
    Event,
    Informer,
    NotFoundError,
    ObjectMeta,
    Resource,
    record_event,
)
from scalers import ConfigError, MetricCache, Registry, ScalerError

log = logging.getLogger(__name__)

METRICSOURCES = Resource("updraft.io", "v1alpha1", "metricsources", namespaced=True)
COMPONENT = "updraft-adapter"


@dataclass(frozen=True)
class ControllerSettings:
    status_interval: float = 10.0
    """Seconds between status refreshes: fresh enough for `kubectl get msrc`, while the cache
    still asks each upstream at most once per polling interval."""
    secret_refresh: float = 60.0
    """Seconds between re-reads of the `authRef` Secrets of healthy sources, so rotated
    credentials are picked up without watching Secrets (RBAC grants only `get` on them). A
    source whose Secret is missing or incomplete is retried every `status_interval` instead."""
    measure_budget: float = 5.0
    """Seconds a status refresh waits for one MetricSource's upstream before reporting it."""


def _decode_secret(secret: Mapping[str, Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, encoded in (secret.get("data") or {}).items():
        try:
            values[key] = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidMetricSourceError(
                "spec.trigger.authRef", f"Secret key {key!r} is not base64-encoded UTF-8 text"
            ) from None
    for key, text in (secret.get("stringData") or {}).items():
        values[key] = str(text)
    return values


class MetricSourceController:
    def __init__(
        self,
        api: Api,
        provider: MetricSourceProvider,
        cache: MetricCache,
        registry: Registry,
        *,
        settings: ControllerSettings = ControllerSettings(),
        clock: Clock | None = None,
    ) -> None:
        self._api = api
        self._clock = clock or SystemClock()
        self._provider = provider
        self._cache = cache
        self._registry = registry
        self._settings = settings
        self._informer = Informer(api, METRICSOURCES, handler=self._on_event)
        self._objects: dict[tuple[str, str], dict[str, Any]] = {}
        self._written: dict[tuple[str, str], dict[str, Any]] = {}
        self._retry: set[tuple[str, str]] = set()
        """Sources with an authRef that failed to apply: re-read every status interval."""
        self._task: asyncio.Task[None] | None = None

    @property
    def synced(self) -> asyncio.Event:
        return self._informer.synced

    def start(self) -> None:
        self._informer.start()
        if self._task is None:
            self._task = asyncio.create_task(self._status_loop(), name="metricsource-status")

    async def close(self) -> None:
        await self._informer.close()
        await cancel_and_wait(self._task)
        self._task = None

    # -- objects -> provider -----------------------------------------------------------------

    async def _on_event(self, event: Event) -> None:
        key = ObjectMeta.of(event.object).key
        if event.type == "DELETED":
            self._objects.pop(key, None)
            self._written.pop(key, None)
            self._retry.discard(key)
            self._provider.remove(*key)
            return
        self._objects[key] = event.object
        await self._apply(key, event.object)

    async def _apply(self, key: tuple[str, str], obj: dict[str, Any]) -> None:
        source: MetricSource | None = None
        try:
            source = parse(obj, registry=self._registry)
            if source.auth_ref is not None:
                # Validated only now: the auth keys the scaler needs are in the Secret.
                source = source.with_auth(await self._secret(source))
                validate(source, registry=self._registry)
        except InvalidMetricSourceError as e:
            if source is not None and source.auth_ref is not None:
                self._retry.add(key)  # the Secret may appear or be fixed at any time
            self._provider.mark_invalid(*key, str(e))
            await self._report(key, ready=False, reason="InvalidSpec", message=str(e))
            return
        self._retry.discard(key)
        self._provider.upsert(source)

    async def _secret(self, source: MetricSource) -> dict[str, str]:
        assert source.auth_ref is not None
        try:
            secret = await self._api.get(SECRETS, source.auth_ref, source.namespace)
        except NotFoundError:
            raise InvalidMetricSourceError(
                "spec.trigger.authRef.name",
                f"Secret {source.namespace}/{source.auth_ref} does not exist",
            ) from None
        except ApiError as e:
            raise InvalidMetricSourceError(
                "spec.trigger.authRef.name",
                f"Secret {source.namespace}/{source.auth_ref} cannot be read: {e.code} {e.reason}",
            ) from None
        return _decode_secret(secret)

    # -- status --------------------------------------------------------------------------------

    async def _report(
        self,
        key: tuple[str, str],
        *,
        ready: bool,
        reason: str,
        message: str,
        value: str | None = None,
        active: bool | None = None,
    ) -> None:
        obj = self._objects.get(key)
        if obj is None:
            return
        before = self._written.get(key)
        wanted: dict[str, Any] = {
            "ready": ready,
            "reason": reason,
            "message": message,
            "value": value,
            "active": active,
        }
        if before == wanted:
            return
        generation = ObjectMeta.of(obj).generation
        condition = {
            "type": "Ready",
            "status": "True" if ready else "False",
            "reason": reason,
            "message": message,
            "lastTransitionTime": format_rfc3339(self._clock.now()),
            "observedGeneration": generation,
        }
        if before is not None and before["ready"] == ready and before["reason"] == reason:
            condition["lastTransitionTime"] = before["transition"]
        status: dict[str, Any] = {
            "conditions": [condition],
            "lastError": "" if ready else message,
            "lastUpdated": format_rfc3339(self._clock.now()),
            "observedGeneration": generation,
        }
        if value is not None:
            status["lastValue"] = value
        if active is not None:
            status["active"] = active
        try:
            await self._api.patch_status(METRICSOURCES, key[1], {"status": status}, key[0])
        except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as e:
            log.warning("cannot write status of MetricSource %s/%s: %s", *key, e)
            return
        self._written[key] = {**wanted, "transition": condition["lastTransitionTime"]}
        if before is None or before["ready"] != ready:
            if ready:
                log.info("MetricSource %s/%s is Ready: %s", *key, message)
            else:
                log.warning("MetricSource %s/%s is not Ready (%s): %s", *key, reason, message)
        if before is None or before["ready"] != ready or before["reason"] != reason:
            await record_event(
                self._api,
                obj,
                type_="Normal" if ready else "Warning",
                reason=reason,
                message=message,
                component=COMPONENT,
            )

    async def _refresh_one(self, source: MetricSource) -> None:
        try:
            m = await self._cache.get(
                source.spec(), source.policy, budget=self._settings.measure_budget
            )
        except ConfigError as e:
            await self._report(source.key, ready=False, reason="InvalidSpec", message=str(e))
        except ScalerError as e:
            await self._report(source.key, ready=False, reason="UpstreamError", message=str(e))
        else:
            await self._report(
                source.key,
                ready=True,
                reason="Measured",
                message="serving the latest measurement",
                value=format_metric_value(m.value),
                active=m.active,
            )

    async def _status_loop(self) -> None:
        await self._informer.synced.wait()
        loop = asyncio.get_running_loop()
        next_secret_refresh = loop.time() + self._settings.secret_refresh
        while True:
            if loop.time() >= next_secret_refresh:
                for key, obj in list(self._objects.items()):
                    await self._apply(key, obj)
                next_secret_refresh = loop.time() + self._settings.secret_refresh
            else:
                for key in list(self._retry):
                    pending = self._objects.get(key)
                    if pending is not None:
                        await self._apply(key, pending)
            await asyncio.gather(*(self._refresh_one(s) for s in self._provider.sources()))
            await asyncio.sleep(self._settings.status_interval)
