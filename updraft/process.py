"""What every Updraft process shares: the health and /metrics endpoints, stopping on
SIGTERM/SIGINT, opening the cluster, and the start-up error the console script turns into
exit status 2."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from kube import Api, ConfigError, ConnectSettings, UnreachableError, connect, kubeconfig_path

log = logging.getLogger("updraft")


METRICS_HOST = "0.0.0.0"
"""Where `/metrics`, `/healthz` and `/readyz` listen: all interfaces, so Prometheus and the
kubelet's probes reach them on the pod IP (`--metrics-host` of every command)."""
METRICS_PORT = 8080
"""The conventional HTTP metrics port, apart from the serving ports; 0 turns the endpoint off
(`--metrics-port` of every command)."""


class StartupError(RuntimeError):
    """The process cannot serve as configured; the message says why and what to change."""


@contextlib.contextmanager
def listening(flag: str, host: str, port: int) -> Iterator[None]:
    """Turn a failure to listen on host:port (taken, not an address here, not allowed) into a
    `StartupError` that names the flag to change."""
    try:
        yield
    except OSError as e:
        why = os.strerror(e.errno) if e.errno else str(e)
        raise StartupError(f"{flag} {port}: cannot listen on {host}:{port}: {why}") from None


async def open_cluster(
    stack: contextlib.AsyncExitStack, *, kubeconfig: Path | None, settings: ConnectSettings
) -> Api:
    """The cluster of `--kubeconfig`, else `$KUBECONFIG`, else the pod's service account, once
    its apiserver answers; closed when `stack` unwinds. Bad credentials fail at once, a dead
    apiserver after `settings.wait` (`--apiserver-wait`), both as a `StartupError`."""
    try:
        path = kubeconfig_path(kubeconfig)
        api_client = await connect(path, settings=settings)
    except (ConfigError, UnreachableError) as e:
        raise StartupError(str(e)) from None
    stack.push_async_callback(api_client.close)
    return Api(api_client)


def metrics_app(ready: asyncio.Event) -> web.Application:
    """`/metrics` (prometheus-client's default registry), `/healthz`, `/livez`, and `/readyz`
    (200 once `ready` is set)."""

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


async def serve_metrics(
    stack: contextlib.AsyncExitStack, *, host: str, port: int, ready: asyncio.Event
) -> None:
    """Serve `metrics_app` on host:port until `stack` unwinds."""
    runner = web.AppRunner(metrics_app(ready), access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    with listening("--metrics-port", host, port):
        await web.TCPSite(runner, host, port).start()
    log.info("serving /metrics on %s:%d", host, port)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
