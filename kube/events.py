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
from kube.errors import ApiError, InvalidObjectError
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
    try:
        meta = ObjectMeta.of(involved)
    except InvalidObjectError as e:
        log.warning("could not record event %s on %s: %s", reason, name_of(involved), e)
        return
    namespace = meta.namespace or "default"
    now = format_rfc3339((clock or SystemClock()).now())
    event: JSON = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta.name or 'object'}.{uuid.uuid4().hex[:12]}",
            "namespace": namespace,
        },
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
