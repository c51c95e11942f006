"""Asking kube-apiserver who a caller is and what it may do: TokenReview and
SubjectAccessReview, and the front-proxy trust it publishes for aggregated API servers.

Owns the three raw calls; caching and the mapping onto an HTTP server's auth model belong to the
server that uses them (the adapter).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from kube.client import CONFIGMAPS, JSON, Api, Resource

TOKENREVIEWS = Resource("authentication.k8s.io", "v1", "tokenreviews", namespaced=False)
SUBJECTACCESSREVIEWS = Resource(
    "authorization.k8s.io", "v1", "subjectaccessreviews", namespaced=False
)


async def token_review(api: Api, token: str, *, audiences: list[str] | None = None) -> JSON:
    """The TokenReview's `status` (`authenticated`, `user {username, groups, extra}`)."""
    spec: dict[str, Any] = {"token": token}
    if audiences:
        spec["audiences"] = audiences
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
    answer = await api.create(TOKENREVIEWS, body)
    status: JSON = answer.get("status") or {}
    return status


async def subject_access_review(api: Api, spec: JSON) -> JSON:
    """The SubjectAccessReview's `status` (`allowed`, `denied`, `reason`)."""
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
    answer = await api.create(SUBJECTACCESSREVIEWS, body)
    status: JSON = answer.get("status") or {}
    return status


@dataclass(frozen=True)
class RequestHeaderTrust:
    """What kube-apiserver publishes in kube-system/extension-apiserver-authentication for the
    servers it proxies to: the CA its front-proxy client certificate chains to, and the rest."""

    client_ca_pem: str
    allowed_names: tuple[str, ...]
    username_headers: tuple[str, ...]
    group_headers: tuple[str, ...]
    extra_headers_prefixes: tuple[str, ...]


def _json_list(data: dict[str, str], key: str) -> tuple[str, ...]:
    raw = data.get(key)
    if not raw:
        return ()
    return tuple(str(x) for x in orjson.loads(raw))


async def request_header_trust(api: Api) -> RequestHeaderTrust | None:
    """The front-proxy trust kube-apiserver published, or None when it published none."""
    cm = await api.get(CONFIGMAPS, "extension-apiserver-authentication", "kube-system")
    data: dict[str, str] = cm.get("data") or {}
    ca = data.get("requestheader-client-ca-file")
    if not ca:
        return None
    return RequestHeaderTrust(
        client_ca_pem=ca,
        allowed_names=_json_list(data, "requestheader-allowed-names"),
        username_headers=_json_list(data, "requestheader-username-headers"),
        group_headers=_json_list(data, "requestheader-group-headers"),
        extra_headers_prefixes=_json_list(data, "requestheader-extra-headers-prefix"),
    )
