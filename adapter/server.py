"""Listening: the adapter application on an HTTPS socket.

Owns the lifecycle of the listening site and of the certificate reloader that feeds it
(`start()` / `close()`), and reports the bound port (port 0 picks a free one). It must not build
routes (`app.py`) nor certificates (`tls.py`).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from aiohttp import web

from adapter.tls import ServingCertificate

DEFAULT_PORT = 6443
MAX_REQUEST_LINE = 64 * 1024
"""Bytes of request line (and of one header) accepted: aiohttp's 8190 refuses a long but
reasonable label selector before any handler could answer it with a Status. Go's servers take
1 MiB of headers in all; 64 KiB is ample for a path and query."""


class _OneLineLogger(logging.Logger):
    """aiohttp's request handler logs every request it cannot parse with a full traceback, so
    any client could flood the log: here that is one warning line with the reason."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kw: Any) -> None:
        error = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        reason = str(error) if error is not None else "unknown error"
        if len(reason) > 200:
            reason = reason[:197] + "..."
        kw.pop("stack_info", None)
        self.warning(f"{msg}: %s", *args, reason, **kw)


def _request_logger() -> logging.Logger:
    logger = _OneLineLogger("aiohttp.server")
    logger.parent = logging.getLogger("aiohttp")
    return logger


class AdapterServer:
    """Serves `app` over TLS on `host:port` while started."""

    def __init__(
        self,
        app: web.Application,
        *,
        certificate: ServingCertificate,
        host: str = "0.0.0.0",
        port: int = DEFAULT_PORT,
        shutdown_timeout: float = 5.0,
    ) -> None:
        self._runner = web.AppRunner(
            app,
            access_log=None,
            shutdown_timeout=shutdown_timeout,
            max_line_size=MAX_REQUEST_LINE,
            max_field_size=MAX_REQUEST_LINE,
            logger=_request_logger(),
        )
        self._certificate = certificate
        self._host = host
        self._port = port
        self.port = port

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self._host, self._port, ssl_context=self._certificate.context
        )
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._certificate.start()

    async def close(self) -> None:
        await self._certificate.close()
        await self._runner.cleanup()
