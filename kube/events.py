"""Recording core/v1 Events on the objects controllers act on.

Owns building and posting an Event, and ``EventSeries``: an Event that stays true (a pod still
unprovisionable, a drain still blocked) is kept current the way kube-scheduler keeps its
``FailedScheduling``: one Event whose ``count`` and ``lastTimestamp`` are updated in place, and
posted anew when the apiserver has expired it (``--event-ttl``, 1 h by default). A failure to
record is logged, never raised, because an Event is a courtesy to the reader and must not stop
the work it describes.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import aiohttp

from kits import Clock, SystemClock, format_rfc3339
from kube.client import EVENTS, JSON, Api
from kube.errors import ApiError, InvalidObjectError, NotFoundError
from kube.views import ObjectMeta, name_of

log = logging.getLogger(__name__)

MESSAGE_MAX = 1024
"""kube-apiserver refuses Event messages over 1 KiB."""


async def record_event(
    api: Api,
    involved: JSON,
    *,
    type_: str,
    reason: str,
    message: str,
    component: str,
    clock: Clock | None = None,
) -> None:
    """Post an Event (`type_` Normal or Warning) about `involved`, a full object."""
    await _post(
        api, involved, type_=type_, reason=reason, message=message, component=component, clock=clock
    )


async def _post(
    api: Api,
    involved: JSON,
    *,
    type_: str,
    reason: str,
    message: str,
    component: str,
    clock: Clock | None,
) -> tuple[str, str] | None:
    """Post the Event; its (namespace, name), or None when it could not be recorded."""
    try:
        meta = ObjectMeta.of(involved)
    except InvalidObjectError as e:
        log.warning("could not record event %s on %s: %s", reason, name_of(involved), e)
        return None
    namespace = meta.namespace or "default"
    now = format_rfc3339((clock or SystemClock()).now())
    name = f"{meta.name or 'object'}.{uuid.uuid4().hex[:12]}"
    event: JSON = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion", ""),
            "kind": involved.get("kind", ""),
            "name": meta.name,
            "namespace": meta.namespace,
            "uid": meta.uid,
            "resourceVersion": meta.resource_version,
        },
        "type": type_,
        "reason": reason,
        "message": message[:MESSAGE_MAX],
        "source": {"component": component},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        await api.create(EVENTS, event, namespace)
    except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as e:
        log.warning("could not record event %s on %s: %s", reason, meta.name, e)
        return None
    return namespace, name


@dataclass
class _Posted:
    namespace: str
    name: str
    count: int
    at: float
    """Clock seconds of the last post or update."""


class EventSeries:
    """Events that repeat while what they say stays true.

    The first ``record`` of an (object, reason, message) posts an Event; a repeat within
    ``interval`` seconds does nothing (a controller may say it every pass); a repeat later
    updates that Event's ``count`` and ``lastTimestamp``, or posts it anew if it has expired.
    A new message about the same object and reason starts a new series.
    """

    def __init__(
        self,
        api: Api,
        *,
        component: str,
        interval: float,
        clock: Clock | None = None,
        remembered: int = 10_000,
    ) -> None:
        self._api = api
        self._component = component
        self._interval = interval
        self._clock = clock or SystemClock()
        self._remembered = remembered
        """Series kept; past it all are forgotten (an old series then starts a new Event)."""
        self._posted: dict[tuple[str, str], tuple[str, _Posted]] = {}
        """(object uid or name, reason) -> (message, the Event that says it)."""

    def forget(self, uid: str) -> None:
        """Drop every series about the object ``uid`` (it is gone, or what was said is over)."""
        for key in [k for k in self._posted if k[0] == uid]:
            del self._posted[key]

    async def record(self, involved: JSON, *, type_: str, reason: str, message: str) -> None:
        meta = ObjectMeta.of(involved)
        key = (meta.uid or f"{meta.namespace}/{meta.name}", reason)
        now = self._clock.now().timestamp()
        known = self._posted.get(key)
        if known is not None and known[0] == message:
            posted = known[1]
            if now - posted.at < self._interval:
                return
            if await self._update(posted, now):
                return
        if len(self._posted) >= self._remembered:
            self._posted.clear()
        where = await _post(
            self._api,
            involved,
            type_=type_,
            reason=reason,
            message=message,
            component=self._component,
            clock=self._clock,
        )
        if where is not None:
            self._posted[key] = (message, _Posted(where[0], where[1], 1, now))

    async def _update(self, posted: _Posted, now: float) -> bool:
        """Bump the Event in place; False when it is gone (expired) and must be posted anew."""
        patch = {"count": posted.count + 1, "lastTimestamp": format_rfc3339(self._clock.now())}
        try:
            await self._api.patch(EVENTS, posted.name, patch, posted.namespace)
        except NotFoundError:
            return False
        except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as e:
            log.warning("could not update event %s: %s", posted.name, e)
            return True
        posted.count += 1
        posted.at = now
        return True
