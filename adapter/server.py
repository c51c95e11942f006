"""Listening: the adapter application on an HTTPS socket.

Owns the lifecycle of the listening site and of the certificate reloader that feeds it
(`start()` / `close()`), and reports the bound port (port 0 picks a free one). It must not build
routes (`app.py`) nor certificates (`tls.py`).
"""

from __future__ import annotations

from aiohttp import web

from adapter.tls import ServingCertificate

DEFAULT_PORT = 6443


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
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
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
