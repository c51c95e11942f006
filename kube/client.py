"""Building an API client and speaking raw JSON to the apiserver.

Owns credentials loading (a kubeconfig path, else in-cluster), the start-up wait for the
apiserver, and the few raw calls the informer and leader election need (get, create, replace,
list, watch stream), returning plain JSON dicts. It must not interpret objects: typed views
belong to the packages that own them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from kubernetes_asyncio import client, config
from kubernetes_asyncio.config import ConfigException

from kube.errors import ApiError, ConfigError, UnreachableError
from kube.views import ListMeta

JSON = dict[str, Any]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectSettings:
    """How long start-up waits for the apiserver before giving up."""

    wait: float = 30.0
    """30 s, as kube-controller-manager waits for a healthy apiserver before it exits: long
    enough for an apiserver that is restarting, short enough that a wrong address shows as a
    failed pod rather than one that hangs. 0: one attempt."""
    first_backoff: float = 0.5
    max_backoff: float = 5.0
    """Doubling from 0.5 s to at most 5 s between attempts, each attempt logged."""


def kubeconfig_path(flag: str | Path | None) -> str | None:
    """The kubeconfig to use, as kubectl picks it: the flag, else the first existing file of
    the colon-separated `$KUBECONFIG` (kubectl merges them all; the first file is enough for
    one cluster), else None for the pod's service account. A `$KUBECONFIG` naming no existing
    file is a `ConfigError`, not a silent fall back to in-cluster."""
    if flag is not None:
        return str(flag)
    listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    if not listed:
        return None
    for path in listed:
        if Path(path).is_file():
            return path
    raise ConfigError(f"$KUBECONFIG={os.environ['KUBECONFIG']}: no such file")


async def _load(kubeconfig: str | None) -> client.Configuration:
    configuration = client.Configuration()
    try:
        if kubeconfig is not None:
            await config.load_kube_config(
                config_file=kubeconfig, client_configuration=configuration
            )
        else:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError, ValueError, TypeError) as e:
        where = kubeconfig or "in-cluster service account (give --kubeconfig or set $KUBECONFIG)"
        raise ConfigError(f"cannot load Kubernetes credentials from {where}: {e}") from None
    return configuration


async def connect(
    kubeconfig: str | None = None, *, settings: ConnectSettings | None = None
) -> client.ApiClient:
    """An ApiClient from `kubeconfig`, or from the pod's service account when it is None.

    With `settings`, the apiserver must also answer `GET /version` first: connection failures
    and 5xx are retried with backoff for `settings.wait` seconds (then `UnreachableError`), a
    401/403 (wrong credentials) fails at once as a `ConfigError`. The client is closed on any
    failure, so no session is left open."""
    configuration = await _load(kubeconfig)
    api_client = client.ApiClient(configuration=configuration)
    if settings is None:
        return api_client
    try:
        await _wait_for_apiserver(Api(api_client), str(configuration.host), settings)
    except BaseException:
        await api_client.close()
        raise
    return api_client


async def _wait_for_apiserver(api: Api, host: str, settings: ConnectSettings) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.wait
    backoff = settings.first_backoff
    attempt = 0
    while True:
        attempt += 1
        try:
            # Each attempt gets what is left of the wait (at least a second): a black-holed
            # address must not hold start-up for the client's 30 s request timeout each time.
            async with asyncio.timeout(max(deadline - loop.time(), 1.0)):
                await api.request("GET", "/version")
            return
        except aiohttp.InvalidURL as e:
            raise ConfigError(f"the apiserver address {host!r} is not a URL: {e}") from None
        except ApiError as e:
            if e.code in (401, 403):
                raise ConfigError(
                    f"the apiserver at {host} refused the credentials: {e.code} {e.reason}"
                ) from None
            why = str(e)
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            why = str(e) or type(e).__name__
        left = deadline - loop.time()
        if left <= 0:
            raise UnreachableError(
                f"the apiserver at {host} did not answer within {settings.wait:g}s "
                f"({attempt} attempts): {why}"
            )
        log.warning("apiserver at %s not reachable (attempt %d): %s", host, attempt, why)
        await asyncio.sleep(min(backoff, left))
        backoff = min(backoff * 2, settings.max_backoff)


@dataclass(frozen=True)
class Resource:
    """One kind of object on the API: where to list, watch and write it."""

    group: str
    """API group; "" for the core group."""
    version: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/api/{self.version}" if self.group == "" else f"/apis/{self.group}/{self.version}"
        if self.namespaced and namespace is not None:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
        return base


LEASES = Resource("coordination.k8s.io", "v1", "leases", namespaced=True)
CONFIGMAPS = Resource("", "v1", "configmaps", namespaced=True)
EVENTS = Resource("", "v1", "events", namespaced=True)
PODS = Resource("", "v1", "pods", namespaced=True)
NODES = Resource("", "v1", "nodes", namespaced=False)
SECRETS = Resource("", "v1", "secrets", namespaced=True)


class Api:
    """Raw JSON calls on one ApiClient. Every failure status becomes an `ApiError`."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.client = api_client

    async def _call(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: JSON | None = None,
        request_timeout: float | None = 30.0,
        content_type: str = "application/json",
    ) -> Any:
        response = await self.client.call_api(
            path,
            method,
            query_params=query or [],
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=request_timeout,
        )
        return response

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: JSON | None = None,
        content_type: str = "application/json",
    ) -> JSON:
        response = await self._call(method, path, query=query, body=body, content_type=content_type)
        try:
            raw = await response.read()
        finally:
            response.release()
        data = orjson.loads(raw) if raw else {}
        if response.status >= 400:
            raise ApiError.from_status(response.status, data)
        result: JSON = data
        return result

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> JSON:
        return await self.request("GET", resource.path(namespace, name))

    async def create(self, resource: Resource, obj: JSON, namespace: str | None = None) -> JSON:
        return await self.request("POST", resource.path(namespace), body=obj)

    async def replace(self, resource: Resource, obj: JSON, namespace: str | None = None) -> JSON:
        """PUT `obj`; its metadata.resourceVersion makes this a compare-and-swap."""
        name = obj["metadata"]["name"]
        return await self.request("PUT", resource.path(namespace, name), body=obj)

    async def patch_status(
        self, resource: Resource, name: str, patch: JSON, namespace: str | None = None
    ) -> JSON:
        """JSON merge patch of the status subresource."""
        return await self.request(
            "PATCH",
            resource.path(namespace, name) + "/status",
            body=patch,
            content_type="application/merge-patch+json",
        )

    async def patch(
        self, resource: Resource, name: str, patch: JSON, namespace: str | None = None
    ) -> JSON:
        """JSON merge patch of the object (metadata and spec; a `null` value removes a key)."""
        return await self.request(
            "PATCH",
            resource.path(namespace, name),
            body=patch,
            content_type="application/merge-patch+json",
        )

    async def delete(self, resource: Resource, name: str, namespace: str | None = None) -> JSON:
        return await self.request("DELETE", resource.path(namespace, name))

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        limit: int = 500,
    ) -> tuple[list[JSON], str]:
        """Every object (following `continue` pages) and the list's resourceVersion."""
        items: list[JSON] = []
        token = ""
        while True:
            query = [("limit", str(limit))]
            if label_selector:
                query.append(("labelSelector", label_selector))
            if token:
                query.append(("continue", token))
            page = await self.request("GET", resource.path(namespace), query=query)
            items.extend(page.get("items") or [])
            meta = ListMeta.of(page)
            token = meta.continue_
            if not token:
                return items, meta.resource_version

    async def watch(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        resource_version: str,
        label_selector: str | None = None,
        timeout_seconds: int = 300,
    ) -> AsyncIterator[JSON]:
        """The watch events after `resource_version`, until the server ends the stream.

        An ERROR event with a Status is raised as the matching `ApiError` (410 → `GoneError`).
        """
        query = [
            ("watch", "1"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(timeout_seconds)),
        ]
        if label_selector:
            query.append(("labelSelector", label_selector))
        # The server closes the stream after timeoutSeconds; the client waits a little longer.
        response = await self._call(
            "GET", resource.path(namespace), query=query, request_timeout=timeout_seconds + 30
        )
        try:
            if response.status >= 400:
                raw = await response.read()
                raise ApiError.from_status(response.status, orjson.loads(raw) if raw else {})
            while True:
                line = await response.content.readline()
                if not line:
                    return
                if not line.strip():
                    continue
                event: JSON = orjson.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise ApiError.from_status(int(status.get("code", 500)), status)
                yield event
        finally:
            response.release()
