"""The aggregation path the metrics adapter will use: kube-apiserver proxies an APIService to a
server on loopback through an ExternalName Service, verifying its certificate for
`<service>.<namespace>.svc` against the APIService's caBundle."""

from __future__ import annotations

import base64
import ssl
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from kubernetes_asyncio import client

from tests.cluster import pki
from tests.e2e.manifests import body
from tests.e2e.waiting import eventually

GROUP = "e2e.updraft.io"
VERSION = "v1alpha1"


def _resource_list() -> bytes:
    return orjson.dumps(
        {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{GROUP}/{VERSION}",
            "resources": [
                {
                    "name": "probes",
                    "singularName": "probe",
                    "namespaced": True,
                    "kind": "Probe",
                    "verbs": ["get"],
                }
            ],
        }
    )


class TinyServer:
    """An HTTPS server on loopback that serves one group-version's discovery document."""

    def __init__(self, *, service: str, namespace: str, workdir: Path) -> None:
        ca = pki.new_ca(workdir, "tiny-ca")
        serving = pki.issue(
            ca,
            workdir,
            "tiny",
            common_name=f"{service}.{namespace}.svc",
            dns_names=(f"{service}.{namespace}.svc", "localhost"),
            ip_addresses=("127.0.0.1",),
            server=True,
        )
        self.ca_pem = ca.files.cert.read_bytes()
        self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ssl.load_cert_chain(serving.cert, serving.key)
        self.requests: list[str] = []
        app = web.Application()
        app.router.add_get(f"/apis/{GROUP}/{VERSION}", self._discovery)
        self._runner = web.AppRunner(app)
        self.port = 0

    async def _discovery(self, request: web.Request) -> web.Response:
        self.requests.append(request.headers.get("X-Remote-User", ""))
        return web.Response(body=_resource_list(), content_type="application/json")

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ssl)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        await self._runner.cleanup()


@pytest.fixture
async def tiny(namespace: str) -> AsyncIterator[TinyServer]:
    with tempfile.TemporaryDirectory() as d:
        server = TinyServer(service="tiny", namespace=namespace, workdir=Path(d))
        await server.start()
        yield server
        await server.stop()


def _available(api_service: Any) -> Any:
    for c in api_service.status.conditions or []:
        if c.type == "Available":
            return c
    return None


async def test_apiservice_through_externalname_becomes_available(
    kube: client.ApiClient, namespace: str, tiny: TinyServer
) -> None:
    core = client.CoreV1Api(kube)
    registration = client.ApiregistrationV1Api(kube)
    await core.create_namespaced_service(
        namespace,
        body(
            client.V1Service,
            {
                "metadata": {"name": "tiny"},
                "spec": {
                    "type": "ExternalName",
                    "externalName": "localhost",
                    "ports": [{"name": "https", "port": tiny.port}],
                },
            },
        ),
    )
    name = f"{VERSION}.{GROUP}"
    await registration.create_api_service(
        body(
            client.V1APIService,
            {
                "metadata": {"name": name},
                "spec": {
                    "group": GROUP,
                    "version": VERSION,
                    "service": {"namespace": namespace, "name": "tiny", "port": tiny.port},
                    "caBundle": base64.b64encode(tiny.ca_pem).decode(),
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                },
            },
        )
    )
    try:

        async def available() -> Any:
            svc = await registration.read_api_service(name)
            cond = _available(svc)
            return cond if cond is not None and cond.status == "True" else None

        cond = await eventually(available, within=60, what=f"APIService {name} Available=True")
        assert cond.reason == "Passed"

        # And a request through kube-apiserver reaches the tiny server, authenticated by the
        # front-proxy client certificate with the caller's identity in X-Remote-User.
        response = await kube.call_api(
            f"/apis/{GROUP}/{VERSION}", "GET", auth_settings=["BearerToken"], _preload_content=False
        )
        assert response.status == 200
        discovery = orjson.loads(await response.read())
        assert discovery["groupVersion"] == f"{GROUP}/{VERSION}"
        assert "kubernetes-admin" in tiny.requests
    finally:
        # An APIService whose backend is gone makes discovery (and namespace deletion) fail
        # cluster-wide, so it goes before the server does.
        await registration.delete_api_service(name)
