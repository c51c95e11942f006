"""JSON on the wire: response bodies.

Owns serialising documents with orjson into aiohttp responses and turning an `AdapterError` into
its `metav1.Status` response (`metav1.Time` values are `kits.clock.format_rfc3339`'s). It must not
decide what a document contains.
"""

from __future__ import annotations

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
