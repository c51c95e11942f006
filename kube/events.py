"""Recording core/v1 Events on the objects controllers act on.

Owns building and posting an Event; a failure to record is logged, never raised, because an
Event is a courtesy to the reader and must not stop the work it describes.
"""

from __future__ import annotations

import logging
import uuid

import aiohttp

from kits.clock import Clock, SystemClock, format_rfc3339
from kube.client import EVENTS, JSON, Api
from kube.errors import ApiError

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
    meta = involved.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    now = format_rfc3339((clock or SystemClock()).now())
    event: JSON = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta.get('name', 'object')}.{uuid.uuid4().hex[:12]}",
            "namespace": namespace,
        },
        "involvedObject": {
            "apiVersion": involved.get("apiVersion", ""),
            "kind": involved.get("kind", ""),
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", ""),
            "uid": meta.get("uid", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
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
        log.warning("could not record event %s on %s: %s", reason, meta.get("name"), e)
