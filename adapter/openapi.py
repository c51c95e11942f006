"""OpenAPI v2 and v3 documents for the adapter's group-versions.

Owns small, valid specs of our read-only paths and list types, served at `/openapi/v2`,
`/openapi/v3` and `/openapi/v3/apis/<group>/<version>` with ETags, so kube-apiserver's OpenAPI
aggregation finds a spec (without one it logs "OpenAPI spec does not exist" every minute) and
`kubectl explain` can describe the types. It must not describe anything we do not serve.

The documents are built once per application; they depend only on the adapter's version.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from aiohttp import web

from adapter.discovery import GROUPS
from adapter.encoding import JSON
from adapter.providers import EXTERNAL_GROUP

_STRING = {"type": "string"}
_QUANTITY = {"type": "string", "description": "A Kubernetes Quantity, e.g. 250m or 1500."}
_TIME = {"type": "string", "format": "date-time"}
_LABEL_SELECTOR = {
    "type": "object",
    "description": "A metav1.LabelSelector (matchLabels, matchExpressions); null when absent.",
    "x-kubernetes-map-type": "atomic",
}
_OBJECT_REFERENCE = {
    "type": "object",
    "properties": {k: _STRING for k in ("kind", "namespace", "name", "apiVersion")},
}
_DEF_PREFIX = "io.k8s.metrics.pkg.apis"


def _name(group: str, version: str, kind: str) -> str:
    package = "external_metrics" if group == EXTERNAL_GROUP else "custom_metrics"
    return f"{_DEF_PREFIX}.{package}.{version}.{kind}"


def _list_schema(group: str, version: str, kind: str, item_ref: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items"],
        "properties": {
            "kind": _STRING,
            "apiVersion": _STRING,
            "metadata": {"type": "object"},
            "items": {"type": "array", "items": {"$ref": item_ref}},
        },
        "x-kubernetes-group-version-kind": [{"group": group, "version": version, "kind": kind}],
    }


def _schemas(group: str, version: str, ref_root: str) -> dict[str, dict[str, Any]]:
    """The list type of one group-version and its item type, `$ref`s under `ref_root`."""
    if group == EXTERNAL_GROUP:
        item = _name(group, version, "ExternalMetricValue")
        return {
            item: {
                "type": "object",
                "required": ["metricName", "metricLabels", "timestamp", "value"],
                "properties": {
                    "metricName": _STRING,
                    "metricLabels": {"type": "object", "additionalProperties": _STRING},
                    "timestamp": _TIME,
                    "window": {"type": "integer", "format": "int64"},
                    "value": _QUANTITY,
                },
            },
            _name(group, version, "ExternalMetricValueList"): _list_schema(
                group, version, "ExternalMetricValueList", ref_root + item
            ),
        }
    item = _name(group, version, "MetricValue")
    if version == "v1beta1":
        properties: dict[str, Any] = {
            "describedObject": _OBJECT_REFERENCE,
            "metricName": _STRING,
            "timestamp": _TIME,
            "window": {"type": "integer", "format": "int64"},
            "value": _QUANTITY,
            "selector": _LABEL_SELECTOR,
        }
        required = ["describedObject", "metricName", "timestamp", "value"]
    else:
        properties = {
            "describedObject": _OBJECT_REFERENCE,
            "metric": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": _STRING, "selector": _LABEL_SELECTOR},
            },
            "timestamp": _TIME,
            "windowSeconds": {"type": "integer", "format": "int64"},
            "value": _QUANTITY,
        }
        required = ["describedObject", "metric", "timestamp", "value"]
    return {
        item: {"type": "object", "required": required, "properties": properties},
        _name(group, version, "MetricValueList"): _list_schema(
            group, version, "MetricValueList", ref_root + item
        ),
    }


_Path = tuple[str, str, list[str], list[str]]


def _paths(group: str, version: str) -> list[_Path]:
    """(operation name, path, path parameters, query parameters) of every GET served."""
    prefix = f"/apis/{group}/{version}"
    if group == EXTERNAL_GROUP:
        return [
            (
                "Namespaced",
                prefix + "/namespaces/{namespace}/{metric}",
                ["namespace", "metric"],
                ["labelSelector"],
            )
        ]
    ns = prefix + "/namespaces/{namespace}"
    one = ["metricLabelSelector"]
    many = ["labelSelector", "metricLabelSelector"]
    return [
        (
            "NamespacedObject",
            ns + "/{resource}/{name}/{metric}",
            ["namespace", "resource", "name", "metric"],
            one,
        ),
        (
            "NamespacedObjects",
            ns + "/{resource}/*/{metric}",
            ["namespace", "resource", "metric"],
            many,
        ),
        ("Namespace", ns + "/metrics/{metric}", ["namespace", "metric"], one),
        ("Object", prefix + "/{resource}/{name}/{metric}", ["resource", "name", "metric"], one),
        ("Objects", prefix + "/{resource}/*/{metric}", ["resource", "metric"], many),
    ]


def _operation(
    *,
    v3: bool,
    group: str,
    version: str,
    name: str,
    path_params: list[str],
    query: list[str],
    ref: str,
) -> dict[str, Any]:
    def parameter(name: str, where: str) -> dict[str, Any]:
        typed: dict[str, Any] = {"schema": _STRING} if v3 else dict(_STRING)
        return {"name": name, "in": where, "required": where == "path", **typed}

    ok: dict[str, Any] = {"description": "OK"}
    if v3:
        ok["content"] = {JSON: {"schema": {"$ref": ref}}}
    else:
        ok["schema"] = {"$ref": ref}
    operation: dict[str, Any] = {
        "operationId": f"read{group.split('.')[0].title()}Metric{name}_{version}",
        "parameters": [parameter(p, "path") for p in path_params]
        + [parameter(q, "query") for q in query],
        "responses": {"200": ok, "401": {"description": "Unauthorized"}},
        "x-kubernetes-action": "get",
        "x-kubernetes-group-version-kind": {
            "group": group,
            "version": version,
            "kind": _list_kind(group),
        },
    }
    if not v3:
        operation["produces"] = [JSON]
    return {"get": operation}


def _list_kind(group: str) -> str:
    return "ExternalMetricValueList" if group == EXTERNAL_GROUP else "MetricValueList"


def openapi_v2(version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    definitions: dict[str, Any] = {}
    root = "#/definitions/"
    for group in GROUPS:
        for gv in group.versions:
            definitions.update(_schemas(group.name, gv, root))
            ref = root + _name(group.name, gv, _list_kind(group.name))
            for name, path, params, query in _paths(group.name, gv):
                paths[path] = _operation(
                    v3=False,
                    group=group.name,
                    version=gv,
                    name=name,
                    path_params=params,
                    query=query,
                    ref=ref,
                )
    return {
        "swagger": "2.0",
        "info": {"title": "Updraft metrics adapter", "version": version},
        "paths": paths,
        "definitions": definitions,
    }


def openapi_v3_group_version(version: str, group: str, group_version: str) -> dict[str, Any]:
    root = "#/components/schemas/"
    ref = root + _name(group, group_version, _list_kind(group))
    paths = {
        path: _operation(
            v3=True,
            group=group,
            version=group_version,
            name=name,
            path_params=params,
            query=query,
            ref=ref,
        )
        for name, path, params, query in _paths(group, group_version)
    }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Updraft metrics adapter", "version": version},
        "paths": paths,
        "components": {"schemas": _schemas(group, group_version, root)},
    }


class _Document:
    def __init__(self, document: dict[str, Any]) -> None:
        self.body = orjson.dumps(document)
        self.etag = hashlib.sha256(self.body).hexdigest()[:32].upper()


def _serve(document: _Document, request: web.Request) -> web.Response:
    etag = f'"{document.etag}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache, private"}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=document.body, content_type=JSON, headers=headers)


class OpenAPIHandlers:
    """Serves the prebuilt documents."""

    def __init__(self, version: str) -> None:
        self._v2 = _Document(openapi_v2(version))
        self._v3: dict[str, _Document] = {
            f"apis/{group.name}/{gv}": _Document(openapi_v3_group_version(version, group.name, gv))
            for group in GROUPS
            for gv in group.versions
        }
        self._v3_root = _Document(
            {
                "paths": {
                    key: {"serverRelativeURL": f"/openapi/v3/{key}?hash={doc.etag}"}
                    for key, doc in self._v3.items()
                }
            }
        )

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/openapi/v2", self.v2)
        app.router.add_get("/openapi/v3", self.v3_root)
        app.router.add_get("/openapi/v3/{path:apis/.+}", self.v3)

    async def v2(self, request: web.Request) -> web.Response:
        return _serve(self._v2, request)

    async def v3_root(self, request: web.Request) -> web.Response:
        return _serve(self._v3_root, request)

    async def v3(self, request: web.Request) -> web.Response:
        document = self._v3.get(request.match_info["path"])
        if document is None:
            raise web.HTTPNotFound()
        return _serve(document, request)
