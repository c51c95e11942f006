"""The adapter as kube-apiserver's aggregator and the HPA meet it: HTTPS on loopback, the
front-proxy certificate and identity headers, real discovery, value and error bodies."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapter import (
    GroupResource,
    NonResourceAttributes,
    ResourceAttributes,
    UnavailableError,
    ensure_self_signed,
)
from tests.integration.adapter.conftest import Adapter, AdapterPKI, ClientFactory, client_context
from tests.unit.adapter.fakes import Obj, Series

EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"
CUSTOM = "/apis/custom.metrics.k8s.io"


async def get_json(
    session: aiohttp.ClientSession, url: str, *, status: int = 200, **kwargs: Any
) -> Any:
    async with session.get(url, **kwargs) as response:
        body = await response.json()
        assert response.status == status, body
        assert response.content_type == "application/json"
        return body


def status(code: int, reason: str, message: str, details: dict[str, str] | None = None) -> Any:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


# --- discovery, probes, version, OpenAPI -------------------------------------------------------


async def test_discovery_lists_the_metrics_that_exist(
    adapter: Adapter, session_for: ClientFactory
) -> None:
    session = session_for()
    empty = await get_json(session, adapter.url + EXTERNAL)
    assert [r["name"] for r in empty["resources"]] == ["externalmetrics"]

    adapter.external.put("queue_depth", Series({}, 1))
    adapter.external.put("Lag", Series({}, 1), namespace="team-a")
    listed = await get_json(session, adapter.url + EXTERNAL)
    assert listed == {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "external.metrics.k8s.io/v1beta1",
        "resources": [
            {
                "name": name,
                "singularName": "",
                "namespaced": True,
                "kind": "ExternalMetricValueList",
                "verbs": ["get"],
            }
            for name in ("Lag", "queue_depth")
        ],
    }
    group = await get_json(session, adapter.url + "/apis/external.metrics.k8s.io")
    assert group["kind"] == "APIGroup"
    assert group["preferredVersion"]["groupVersion"] == "external.metrics.k8s.io/v1beta1"


async def test_apis_answers_plain_group_list_even_to_aggregated_discovery(
    adapter: Adapter, session_for: ClientFactory
) -> None:
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    body = await get_json(session_for(), adapter.url + "/apis", headers={"Accept": accept})
    assert body["kind"] == "APIGroupList"
    assert {g["name"] for g in body["groups"]} == {
        "external.metrics.k8s.io",
        "custom.metrics.k8s.io",
    }


async def test_custom_discovery_in_both_versions(
    adapter: Adapter, session_for: ClientFactory
) -> None:
    adapter.custom.objects.append(
        Obj(GroupResource("pods"), "Pod", "ns", "p1", {"app": "web"}, {"rps": 5})
    )
    adapter.custom.objects.append(Obj(GroupResource("nodes"), "Node", "", "n1", {}, {"load": 1}))
    for version in ("v1beta1", "v1beta2"):
        body = await get_json(session_for(), f"{adapter.url}{CUSTOM}/{version}")
        assert body["groupVersion"] == f"custom.metrics.k8s.io/{version}"
        assert [(r["name"], r["namespaced"]) for r in body["resources"]] == [
            ("nodes/load", False),
            ("pods/rps", True),
        ]


async def test_probes_need_no_credentials_and_readyz_follows_the_callback(
    adapter: Adapter, session_for: ClientFactory
) -> None:
    session = session_for(None)
    for path in ("/healthz", "/livez", "/readyz"):
        async with session.get(adapter.url + path) as response:
            assert response.status == 200
            assert await response.text() == "ok"
    adapter.readiness[0] = False
    async with session.get(adapter.url + "/readyz") as response:
        assert response.status == 503
    async with session.get(adapter.url + "/healthz") as response:
        assert response.status == 200


async def test_version_and_openapi(adapter: Adapter, session_for: ClientFactory) -> None:
    session = session_for()
    version = await get_json(session, adapter.url + "/version")
    assert version["gitVersion"] == "v0.1.0"
    assert (version["major"], version["minor"]) == ("0", "1")

    async with session.get(adapter.url + "/openapi/v2") as response:
        assert response.status == 200
        spec = await response.json()
        etag = response.headers["ETag"]
    assert spec["swagger"] == "2.0"
    assert EXTERNAL + "/namespaces/{namespace}/{metric}" in spec["paths"]
    async with session.get(adapter.url + "/openapi/v2", headers={"If-None-Match": etag}) as again:
        assert again.status == 304

    root = await get_json(session, adapter.url + "/openapi/v3")
    assert set(root["paths"]) == {
        "apis/external.metrics.k8s.io/v1beta1",
        "apis/custom.metrics.k8s.io/v1beta1",
        "apis/custom.metrics.k8s.io/v1beta2",
    }
    for entry in root["paths"].values():
        document = await get_json(session, adapter.url + entry["serverRelativeURL"])
        assert document["openapi"] == "3.0.0"
        assert document["paths"]


# --- external metrics --------------------------------------------------------------------------


async def test_external_value_list_with_selector_and_case_insensitive_name(
    adapter: Adapter, session_for: ClientFactory
) -> None:
    adapter.external.put(
        "queueLength",
        Series({"queue": "orders"}, 1500.5),
        Series({"queue": "mail"}, 0.25),
        namespace="team-a",
    )
    body = await get_json(
        session_for(),
        adapter.url + EXTERNAL + "/namespaces/team-a/queuelength",
        params={"labelSelector": "queue in (orders)"},
    )
    assert body == {
        "kind": "ExternalMetricValueList",
        "apiVersion": "external.metrics.k8s.io/v1beta1",
        "metadata": {},
        "items": [
            {
                "metricName": "queueLength",
                "metricLabels": {"queue": "orders"},
                "timestamp": "2026-05-01T12:00:00Z",
                "value": "1500500m",
            }
        ],
    }
    assert adapter.external.asked == [("team-a", "queueLength", "queue in (orders)")]
    # The HPA sees the metric only in its own namespace.
    other = await get_json(
        session_for(), adapter.url + EXTERNAL + "/namespaces/team-b/queuelength", status=404
    )
    assert other["message"] == "the server could not find the metric queuelength"


async def test_external_errors_are_status_bodies(
    adapter: Adapter, session_for: ClientFactory
) -> None:
    session = session_for()
    adapter.external.put("up", Series({}, 1))
    missing = await get_json(session, adapter.url + EXTERNAL + "/namespaces/ns/absent", status=404)
    assert missing == status(
        404,
        "NotFound",
        "the server could not find the metric absent",
        {"name": "absent", "group": "external.metrics.k8s.io"},
    )
    bad = await get_json(
        session,
        adapter.url + EXTERNAL + "/namespaces/ns/up",
        params={"labelSelector": "a in b"},
        status=400,
    )
    assert bad["reason"] == "BadRequest"
    assert "position 5" in bad["message"]
    assert "'('" in bad["message"]
    root_scoped = await get_json(session, adapter.url + EXTERNAL + "/up", status=404)
    assert root_scoped == status(
        404, "NotFound", "the server could not find the requested resource"
    )

    adapter.external.failure = UnavailableError("prometheus is unreachable and no fallback is set")
    down = await get_json(session, adapter.url + EXTERNAL + "/namespaces/ns/up", status=503)
    assert down == status(
        503, "ServiceUnavailable", "prometheus is unreachable and no fallback is set"
    )
    adapter.external.failure = RuntimeError("secret connection string in here")
    broken = await get_json(session, adapter.url + EXTERNAL + "/namespaces/ns/up", status=500)
    assert broken["reason"] == "InternalError"
    assert "secret" not in broken["message"]

    async with session.post(adapter.url + EXTERNAL + "/namespaces/ns/up") as response:
        assert response.status == 405
        assert (await response.json())["reason"] == "MethodNotAllowed"
    nowhere = await get_json(session, adapter.url + "/nowhere", status=404)
    assert nowhere["reason"] == "NotFound"


# --- custom metrics ----------------------------------------------------------------------------


def _pods(adapter: Adapter) -> None:
    for name, rps in (("web-1", 5.914), ("web-2", 3.0)):
        adapter.custom.objects.append(
            Obj(GroupResource("pods"), "Pod", "shop", name, {"app": "web"}, {"rps": rps})
        )
    adapter.custom.objects.append(
        Obj(GroupResource("pods"), "Pod", "shop", "db-1", {"app": "db"}, {"rps": 1})
    )


async def test_custom_pods_metric_v1beta1_with_encoded_star(
    adapter: Adapter, session_for: ClientFactory
) -> None:
    _pods(adapter)
    body = await get_json(
        session_for(),
        adapter.url + CUSTOM + "/v1beta1/namespaces/shop/pods/%2A/rps",
        params={"labelSelector": "app=web"},
    )
    assert body == {
        "kind": "MetricValueList",
        "apiVersion": "custom.metrics.k8s.io/v1beta1",
        "metadata": {},
        "items": [
            {
                "describedObject": {
                    "kind": "Pod",
                    "namespace": "shop",
                    "name": name,
                    "apiVersion": "/v1",
                },
                "metricName": "rps",
                "timestamp": "2026-05-01T12:00:00Z",
                "window": 60,
                "value": value,
                "selector": None,
            }
            for name, value in (("web-1", "5914m"), ("web-2", "3"))
        ],
    }


async def test_custom_object_metric_v1beta2_with_metric_selector(
    adapter: Adapter, session_for: ClientFactory
) -> None:
    adapter.custom.objects.append(
        Obj(
            GroupResource("deployments", "apps"),
            "Deployment",
            "shop",
            "web",
            {},
            {"queue": 42},
            api_version="apps/v1",
        )
    )
    body = await get_json(
        session_for(),
        adapter.url + CUSTOM + "/v1beta2/namespaces/shop/deployments.apps/web/queue",
        params={"metricLabelSelector": "tier=front"},
    )
    assert body == {
        "kind": "MetricValueList",
        "apiVersion": "custom.metrics.k8s.io/v1beta2",
        "metadata": {},
        "items": [
            {
                "describedObject": {
                    "kind": "Deployment",
                    "namespace": "shop",
                    "name": "web",
                    "apiVersion": "apps/v1",
                },
                "metric": {"name": "queue", "selector": {"matchLabels": {"tier": "front"}}},
                "timestamp": "2026-05-01T12:00:00Z",
                "windowSeconds": 60,
                "value": "42",
            }
        ],
    }


async def test_custom_root_scoped_and_namespace_metrics(
    adapter: Adapter, session_for: ClientFactory
) -> None:
    session = session_for()
    adapter.custom.objects.append(
        Obj(GroupResource("nodes"), "Node", "", "n1", {"zone": "a"}, {"load": 0.5})
    )
    adapter.custom.objects.append(
        Obj(GroupResource("namespaces"), "Namespace", "", "shop", {}, {"budget": 7})
    )
    one = await get_json(session, adapter.url + CUSTOM + "/v1beta2/nodes/n1/load")
    assert one["items"][0]["value"] == "500m"
    every = await get_json(
        session, adapter.url + CUSTOM + "/v1beta2/nodes/*/load", params={"labelSelector": "zone"}
    )
    assert [i["describedObject"]["name"] for i in every["items"]] == ["n1"]
    namespace = await get_json(
        session, adapter.url + CUSTOM + "/v1beta1/namespaces/shop/metrics/budget"
    )
    assert namespace["items"][0]["describedObject"] == {
        "kind": "Namespace",
        "name": "shop",
        "apiVersion": "/v1",
    }
    assert adapter.custom.asked[-1] == {
        "resource": "namespaces",
        "namespace": "",
        "name": "shop",
        "metric": "budget",
    }
    missing = await get_json(session, adapter.url + CUSTOM + "/v1beta1/nodes/n2/load", status=404)
    assert missing == status(
        404,
        "NotFound",
        "the server could not find the metric load for nodes n2",
        {"name": "load", "group": "custom.metrics.k8s.io", "kind": "nodes"},
    )
    invalid = await get_json(
        session, adapter.url + CUSTOM + "/v1beta1/namespaces/shop/pods", status=400
    )
    assert invalid["reason"] == "BadRequest"
    short = await get_json(
        session, adapter.url + CUSTOM + "/v1beta1/namespaces/shop/pods/p", status=404
    )
    assert short["reason"] == "NotFound"


# --- authentication and authorization ----------------------------------------------------------


async def test_authorizer_sees_the_attributes_kube_apiserver_would_send(
    adapter: Adapter, session_for: ClientFactory
) -> None:
    _pods(adapter)
    adapter.external.put("up", Series({}, 1))
    session = session_for()
    await get_json(session, adapter.url + EXTERNAL + "/namespaces/shop/up")
    await get_json(session, adapter.url + CUSTOM + "/v1beta2/namespaces/shop/pods/%2A/rps")
    await get_json(session, adapter.url + EXTERNAL)
    assert adapter.authorizer.seen == [
        ResourceAttributes(
            verb="list",
            group="external.metrics.k8s.io",
            version="v1beta1",
            resource="up",
            namespace="shop",
        ),
        ResourceAttributes(
            verb="get",
            group="custom.metrics.k8s.io",
            version="v1beta2",
            resource="pods",
            subresource="rps",
            namespace="shop",
            name="*",
        ),
        NonResourceAttributes(verb="get", path=EXTERNAL),
    ]


async def test_forbidden_user_gets_403(adapter: Adapter, session_for: ClientFactory) -> None:
    body = await get_json(session_for(user="denied"), adapter.url + EXTERNAL, status=403)
    assert body["reason"] == "Forbidden"
    assert "denied" in body["message"]


@pytest.mark.parametrize(
    ("which", "message"),
    [
        (None, "Unauthorized"),
        ("wrong_name", "client certificate common name 'intruder' is not an allowed front proxy"),
        ("from_client_ca", "client certificate is not signed by the requestheader client CA"),
    ],
)
async def test_unauthenticated_requests_get_401(
    adapter: Adapter,
    session_for: ClientFactory,
    test_pki: AdapterPKI,
    which: str | None,
    message: str,
) -> None:
    cert = None if which is None else getattr(test_pki, which)
    body = await get_json(session_for(cert), adapter.url + EXTERNAL, status=401)
    assert body == status(401, "Unauthorized", message)


async def test_front_proxy_cert_without_user_header_gets_401(
    adapter: Adapter, session_for: ClientFactory
) -> None:
    body = await get_json(session_for(user=""), adapter.url + EXTERNAL, status=401)
    assert body["reason"] == "Unauthorized"


async def test_certificate_from_an_untrusted_ca_fails_the_handshake(
    adapter: Adapter, session_for: ClientFactory, test_pki: AdapterPKI
) -> None:
    # Python's ssl verifies any certificate it requests, so this never reaches a handler.
    with pytest.raises(aiohttp.ClientError):
        async with session_for(test_pki.from_stranger).get(adapter.url + EXTERNAL) as response:
            await response.read()


# --- certificate reload ------------------------------------------------------------------------


async def _served_fingerprint(adapter: Adapter) -> str:
    """The SHA-256 of the certificate a new TLS connection is served (not verified here)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    _, writer = await asyncio.open_connection(
        "127.0.0.1", adapter.port, ssl=context, server_hostname="localhost"
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        await writer.wait_closed()
    return hashlib.sha256(der).hexdigest()


def _fingerprint(pem_file: Path) -> str:
    first = (
        pem_file.read_text().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    )
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).hexdigest()


async def test_swapped_certificate_is_served_to_the_next_connection(
    adapter: Adapter,
    test_pki: AdapterPKI,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = await _served_fingerprint(adapter)
    assert before == _fingerprint(test_pki.serving / "tls.crt")

    fresh = ensure_self_signed(tmp_path / "fresh", service="updraft-adapter", namespace="updraft")
    # Replace both files the way a Secret volume update does: new files renamed into place.
    staged_cert = tmp_path / "tls.crt.new"
    staged_key = tmp_path / "tls.key.new"
    shutil.copyfile(fresh.cert_file, staged_cert)
    shutil.copyfile(fresh.key_file, staged_key)
    staged_key.replace(tmp_path / "tls.key")
    staged_cert.replace(tmp_path / "tls.crt")

    # The poller (every 50 ms) picks it up; observe the change rather than sleep for it.
    deadline = asyncio.get_running_loop().time() + 10
    while (after := await _served_fingerprint(adapter)) == before:
        assert asyncio.get_running_loop().time() < deadline, "certificate never reloaded"
        await asyncio.sleep(0.01)
    assert after == _fingerprint(fresh.cert_file)

    # A broken pair keeps the working one and says so.
    (tmp_path / "tls.key").write_text("not a key")
    assert adapter.certificate.reload_if_changed() is False
    assert "could not be loaded" in caplog.text
    assert await _served_fingerprint(adapter) == after

    # Requests over the new certificate still authenticate the front proxy.
    context = ssl.create_default_context(cafile=str(fresh.ca_file))
    context.load_cert_chain(test_pki.front_proxy.cert, test_pki.front_proxy.key)
    async with (
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context), headers={"X-Remote-User": "u"}
        ) as session,
        session.get(adapter.url + EXTERNAL) as response,
    ):
        assert response.status == 200


async def test_client_context_trusts_only_the_serving_ca(test_pki: AdapterPKI) -> None:
    context = client_context(test_pki, None)
    assert context.verify_mode is ssl.CERT_REQUIRED
