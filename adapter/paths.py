"""Request paths: what a metrics URL names, and the attributes an authorizer judges.

Owns splitting a raw (percent-encoded) path into segments, the shapes of the external and custom
metric paths, and the Kubernetes RequestInfo rules that turn a path into SubjectAccessReview
attributes. It must not call providers or build responses.

Segments are split on `/` *before* percent-decoding, so `%2A` arrives as `*` (the HPA's "all
objects") while `%2F` stays inside its segment (and is then rejected as a metric name).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from adapter.errors import InvalidPathError, NotFoundError
from adapter.providers import GroupResource

ALL_OBJECTS = "*"


def split_path(raw_path: str) -> list[str]:
    """The percent-decoded segments of `raw_path`, without the empty ones at either end."""
    return [unquote(s) for s in raw_path.strip("/").split("/")] if raw_path.strip("/") else []


def valid_metric_name(name: str) -> bool:
    """The metric-name rules of the custom metrics API design: no `/`, `%` or `?`, not a dot
    path segment, not empty."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/%?")


@dataclass(frozen=True)
class ExternalPath:
    namespace: str
    metric: str


def parse_external(segments: list[str]) -> ExternalPath:
    """`namespaces/{ns}/{metric}` (the segments after the group-version); anything else is 404,
    as the external API has no root-scoped form."""
    if len(segments) != 3 or segments[0] != "namespaces" or not segments[1]:
        raise NotFoundError()
    if not valid_metric_name(segments[2]):
        raise NotFoundError()
    return ExternalPath(namespace=segments[1], metric=segments[2])


@dataclass(frozen=True)
class CustomPath:
    """One custom-metrics request. `namespace` is "" for root-scoped objects; `name` is None for
    "all objects" (`*`), which the `labelSelector` query parameter then narrows."""

    resource: GroupResource
    namespace: str
    name: str | None
    metric: str


def parse_custom(segments: list[str]) -> CustomPath:
    """The custom-metrics path forms (segments after the group-version):

    `{resource}/{name}/{metric}`, `{resource}/*/{metric}`, `namespaces/{ns}/{resource}/{name}/
    {metric}`, `namespaces/{ns}/{resource}/*/{metric}` and `namespaces/{ns}/metrics/{metric}`
    (a metric describing namespace `ns`, served as the root-scoped object `namespaces/{ns}`).
    """
    if any(not s for s in segments):
        raise NotFoundError()
    if segments and segments[0] == "namespaces" and len(segments) >= 3:
        namespace, rest = segments[1], segments[2:]
        if len(rest) == 2 and rest[0] == "metrics":
            return _custom(GroupResource("namespaces"), "", namespace, rest[1])
        if len(rest) == 1:
            raise InvalidPathError(f"invalid request path {'/'.join(segments)!r}")
        if len(rest) != 3:
            raise NotFoundError()
        return _custom(GroupResource.parse(rest[0].lower()), namespace, rest[1], rest[2])
    if len(segments) != 3:
        raise NotFoundError()
    return _custom(GroupResource.parse(segments[0].lower()), "", segments[1], segments[2])


def _custom(resource: GroupResource, namespace: str, name: str, metric: str) -> CustomPath:
    if not valid_metric_name(metric) or not resource.resource:
        raise NotFoundError()
    return CustomPath(
        resource=resource,
        namespace=namespace,
        name=None if name == ALL_OBJECTS else name,
        metric=metric,
    )


# --- authorization attributes -----------------------------------------------------------------

_VERBS = {
    "GET": "get",
    "HEAD": "get",
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


@dataclass(frozen=True)
class ResourceAttributes:
    """`resourceAttributes` of a SubjectAccessReview."""

    verb: str
    group: str
    version: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""


@dataclass(frozen=True)
class NonResourceAttributes:
    """`nonResourceAttributes` of a SubjectAccessReview (discovery, OpenAPI, /version)."""

    verb: str
    path: str


Attributes = ResourceAttributes | NonResourceAttributes


def request_attributes(method: str, path: str) -> Attributes:
    """What kube-apiserver's RequestInfo would make of `method path` (path decoded).

    `/apis/<g>/<v>/...` with anything after the version is a resource request: an optional
    `namespaces/<ns>` prefix, then resource / name / subresource; a GET without a name is a
    `list` (so the external metric `/namespaces/ns/m` is `list` on resource `m`). Everything
    else is a non-resource request.
    """
    segments = [s for s in path.split("/") if s]
    if len(segments) < 4 or segments[0] != "apis":
        return NonResourceAttributes(verb=method.lower(), path=path)
    group, version, parts = segments[1], segments[2], segments[3:]
    namespace = ""
    if parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in _NAMESPACE_SUBRESOURCES:
            parts = parts[2:]
    resource = parts[0]
    name = parts[1] if len(parts) >= 2 else ""
    subresource = parts[2] if len(parts) >= 3 else ""
    verb = _VERBS.get(method.upper(), method.lower())
    if verb == "get" and not name:
        verb = "list"
    return ResourceAttributes(
        verb=verb,
        group=group,
        version=version,
        resource=resource,
        subresource=subresource,
        namespace=namespace,
        name=name,
    )
