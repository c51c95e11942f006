"""`updraft serve`: the front doors in one process and one event loop, sharing one cache.

Today that is the KEDA gRPC scaler and the process's own `/metrics`, `/healthz` and `/readyz`;
the metrics adapter joins here when it lands, on the same `MetricCache`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from scalers import MetricCache, default_registry
from scalers.grpc import GrpcServer, GrpcSettings

log = logging.getLogger("updraft.serve")


@dataclass(frozen=True)
class ServeSettings:
    grpc: GrpcSettings | None
    """None: the gRPC server is off (`--grpc-port 0`)."""
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 8080
    """Prometheus scrapes /metrics here; 0 turns the endpoint off."""


async def _metrics_app(ready: asyncio.Event) -> web.Application:
    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        if ready.is_set():
            return web.Response(text="ok")
        return web.Response(status=503, text="starting")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def serve(settings: ServeSettings, *, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set (or SIGTERM/SIGINT when `stop` is None)."""
    stop = stop if stop is not None else _stop_on_signals()
    ready = asyncio.Event()
    registry = default_registry()
    cache = MetricCache(registry=registry)
    await cache.start()
    grpc_server: GrpcServer | None = None
    runner: web.AppRunner | None = None
    try:
        if settings.metrics_port:
            runner = web.AppRunner(await _metrics_app(ready), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, settings.metrics_host, settings.metrics_port).start()
            log.info("serving /metrics on %s:%d", settings.metrics_host, settings.metrics_port)
        if settings.grpc is not None:
            grpc_server = GrpcServer(cache, settings.grpc, known_types=registry.types())
            await grpc_server.start()
        ready.set()
        await stop.wait()
        log.info("stopping")
    finally:
        ready.clear()
        if grpc_server is not None:
            await grpc_server.close()
        if runner is not None:
            await runner.cleanup()
        await cache.close()


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
