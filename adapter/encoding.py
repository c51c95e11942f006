"""JSON on the wire: response bodies and the time format Kubernetes uses.

Owns serialising documents with orjson into aiohttp responses, turning an `AdapterError` into
its `metav1.Status` response, and `metav1.Time` formatting. It must not decide what a document
contains.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from adapter.errors import AdapterError
from adapter.status import status_body

JSON = "application/json"


def json_response(document: Mapping[str, Any], *, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(document), status=status, content_type=JSON)


def error_response(error: AdapterError) -> web.Response:
    return json_response(status_body(error), status=error.code)


def format_timestamp(moment: dt.datetime) -> str:
    """`metav1.Time`: RFC 3339 in UTC to the second, with `Z`. A naive datetime is taken as
    UTC (the scalers' clock hands out aware ones; this only spares a crash on a slip)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
