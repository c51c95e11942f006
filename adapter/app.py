"""The adapter's aiohttp application: every route, wired to providers and auth.

Owns assembling the application (probes, `/version`, OpenAPI, `/apis` discovery, the external
and custom groups), the middleware that turns every error into a `metav1.Status` body, and the
order of middlewares (errors outside auth, so a 401/403 is a Status too). It must not listen on
sockets (`server.py` does) nor know where values come from beyond the provider protocols.
"""

from __future__ import annotations

import logging
import platform
import sys
from collections.abc import Callable
from importlib import metadata

from aiohttp import web

from adapter.auth import Authenticator, Authorizer, Handler, auth_middleware
from adapter.custom import CustomHandlers
from adapter.discovery import api_group_list
from adapter.encoding import error_response, json_response
from adapter.errors import AdapterError, InternalError, MethodNotAllowedError, NotFoundError
from adapter.external import ExternalHandlers
from adapter.metrics import AdapterMetrics, metrics_middleware
from adapter.openapi import OpenAPIHandlers
from adapter.providers import CustomMetrics, ExternalMetrics

logger = logging.getLogger(__name__)


def package_version() -> str:
    try:
        return metadata.version("updraft")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def version_info(version: str) -> dict[str, str]:
    """A `version.Info`-shaped document (kubectl and probes read `gitVersion`)."""
    major, _, rest = version.partition(".")
    minor = rest.partition(".")[0]
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"v{version}",
        "gitCommit": "",
        "gitTreeState": "",
        "buildDate": "",
        "goVersion": "",
        "compiler": f"python{sys.version_info.major}.{sys.version_info.minor}",
        "platform": f"{sys.platform}/{platform.machine().lower()}",
    }


@web.middleware
async def status_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as a `metav1.Status` JSON body with its code."""
    try:
        return await handler(request)
    except AdapterError as error:
        if error.code >= 500:
            logger.warning("%s %s failed: %s", request.method, request.path, error.message)
        return error_response(error)
    except web.HTTPNotFound:
        return error_response(NotFoundError())
    except web.HTTPMethodNotAllowed:
        return error_response(
            MethodNotAllowedError(f"the server does not allow this method ({request.method})")
        )
    except web.HTTPException:
        raise
    except Exception:
        # The exception text may hold upstream details (addresses, queries): log, don't send.
        logger.exception("%s %s failed unexpectedly", request.method, request.path)
        return error_response(InternalError("Internal error occurred: unable to fetch metrics"))


def create_app(
    *,
    external: ExternalMetrics,
    custom: CustomMetrics,
    authenticator: Authenticator,
    authorizer: Authorizer,
    ready: Callable[[], bool] = lambda: True,
    version: str | None = None,
    metrics: AdapterMetrics | None = None,
) -> web.Application:
    """The metrics adapter application. `ready` backs `/readyz` (the EndpointSlice readiness
    kube-apiserver's availability check depends on); `version` defaults to the package's;
    `metrics` counts every request (outermost, so it sees the code the client gets)."""
    version = version or package_version()
    middlewares = [status_middleware, auth_middleware(authenticator, authorizer)]
    if metrics is not None:
        middlewares.insert(0, metrics_middleware(metrics))
    app = web.Application(middlewares=middlewares)

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(request: web.Request) -> web.Response:
        if ready():
            return web.Response(text="ok")
        return web.Response(text="not ready", status=503)

    info = version_info(version)

    async def version_handler(request: web.Request) -> web.Response:
        return json_response(info)

    async def apis(request: web.Request) -> web.Response:
        # Plain APIGroupList whatever the Accept header asks: on a non-v2 answer the
        # aggregator falls back to per-version discovery, which is what we serve.
        return json_response(api_group_list())

    app.router.add_get("/healthz", ok)
    app.router.add_get("/livez", ok)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/version", version_handler)
    app.router.add_get("/apis", apis)
    OpenAPIHandlers(version).add_routes(app)
    ExternalHandlers(external).add_routes(app)
    CustomHandlers(custom).add_routes(app)
    return app
