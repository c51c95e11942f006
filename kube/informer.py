"""Informers: a local, always-current copy of one kind of object, kept by list + watch.

Owns the list → watch → (on 410 GoneError) re-list cycle, bookmarks, retry with backoff, and telling
a handler what changed. After a re-list the handler hears exactly the difference from what it
was told before (adds, updates, deletes), so no change is lost or invented across the gap.
It must not interpret the objects it carries.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import aiohttp

from kits import cancel_and_wait
from kube.client import JSON, Api, Resource
from kube.errors import ApiError, GoneError
from kube.views import ObjectMeta

log = logging.getLogger(__name__)

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
Key = tuple[str, str]
"""(namespace, name); namespace is "" for cluster-scoped objects."""


@dataclass(frozen=True)
class Event:
    type: EventType
    object: JSON


Handler = Callable[[Event], Awaitable[None]]


def key_of(obj: JSON) -> Key:
    return ObjectMeta.of(obj).key


@dataclass(frozen=True)
class InformerSettings:
    watch_timeout_seconds: int = 300
    """The server ends each watch after this long and we resume from the last resourceVersion:
    5 min keeps long-lived connections fresh through proxies without re-listing."""
    backoff_initial: float = 0.5
    """First retry delay after a failed list or watch; doubles up to `backoff_max`."""
    backoff_max: float = 30.0
    """A down apiserver is retried at least twice a minute, never hammered."""


class Informer:
    """Keeps `store` equal to the objects of `resource` (in `namespace`, matching
    `label_selector`) and calls `handler` for every change it observes."""

    def __init__(
        self,
        api: Api,
        resource: Resource,
        *,
        handler: Handler | None = None,
        namespace: str | None = None,
        label_selector: str | None = None,
        settings: InformerSettings = InformerSettings(),
        seed: tuple[list[JSON], str] | None = None,
    ) -> None:
        """`seed` (objects, resourceVersion) is a state known from before, e.g. a snapshot:
        the informer resumes watching from it instead of listing first, and if that
        resourceVersion has expired, the re-list tells the handler only what changed."""
        self._api = api
        self._resource = resource
        self._handler = handler
        self._namespace = namespace
        self._selector = label_selector
        self._settings = settings
        self.store: dict[Key, JSON] = {}
        self.synced = asyncio.Event()
        """Set once the first list has been applied; readers wait on it before trusting `store`."""
        self.relists = 0
        """How many times the informer had to list again (410 GoneError or a failed watch)."""
        self._resource_version = ""
        self._need_list = True
        if seed is not None:
            objects, self._resource_version = seed
            self.store = {key_of(o): o for o in objects}
            self._need_list = False
            self.synced.set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"informer {self._resource.plural}")

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _emit(self, event: Event) -> None:
        if self._handler is None:
            return
        try:
            await self._handler(event)
        except Exception:
            # One bad object must not stop the informer for every other object.
            log.exception("informer handler failed for %s %s", event.type, key_of(event.object))

    async def _relist(self) -> None:
        items, rv = await self._api.list(
            self._resource, self._namespace, label_selector=self._selector
        )
        fresh = {key_of(o): o for o in items}
        for key in list(self.store):
            if key not in fresh:
                gone = self.store.pop(key)
                await self._emit(Event("DELETED", gone))
        for key, obj in fresh.items():
            old = self.store.get(key)
            self.store[key] = obj
            if old is None:
                await self._emit(Event("ADDED", obj))
            elif _rv(old) != _rv(obj):
                await self._emit(Event("MODIFIED", obj))
        self._resource_version = rv
        self.synced.set()

    async def _watch_once(self) -> None:
        stream = self._api.watch(
            self._resource,
            self._namespace,
            resource_version=self._resource_version,
            label_selector=self._selector,
            timeout_seconds=self._settings.watch_timeout_seconds,
        )
        async for event in stream:
            obj = event.get("object") or {}
            rv = _rv(obj)
            kind = event.get("type")
            if kind == "BOOKMARK":
                self._resource_version = rv or self._resource_version
                continue
            key = key_of(obj)
            if kind == "DELETED":
                self.store.pop(key, None)
                await self._emit(Event("DELETED", obj))
            elif kind in ("ADDED", "MODIFIED"):
                existed = key in self.store
                self.store[key] = obj
                await self._emit(Event("MODIFIED" if existed else "ADDED", obj))
            if rv:
                self._resource_version = rv

    async def _run(self) -> None:
        delay = self._settings.backoff_initial
        while True:
            try:
                if self._need_list:
                    if self.synced.is_set():
                        self.relists += 1
                    await self._relist()
                    self._need_list = False
                await self._watch_once()
                delay = self._settings.backoff_initial
            except GoneError:
                log.info(
                    "watch of %s expired (410 GoneError); listing again", self._resource.plural
                )
                self._need_list = True
            except (ApiError, aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
                # A torn JSON line is a ValueError. A failed watch resumes from the last
                # resourceVersion (a 410 then says when that is too old); a failed list
                # leaves _need_list set.
                log.warning("list/watch of %s failed: %s; retrying", self._resource.plural, e)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self._settings.backoff_max)


def _rv(obj: JSON) -> str:
    # Opaque: compared for equality only, never for order.
    return ObjectMeta.of(obj).resource_version
