"""Typed views of the parts every Kubernetes object shares: ``metadata`` and list metadata.

Owns reading ``metadata`` (ObjectMeta) and a list's ``metadata`` (ListMeta) once into frozen
dataclasses, so no caller picks the dicts apart by hand. A field of the wrong shape raises
``InvalidObjectError`` naming its path; an absent field takes Kubernetes' zero value. It must
not interpret anything beyond metadata: the packages that own a kind build its view on top.

``resource_version`` is an opaque string. Kubernetes lets clients compare two of them for
equality only (the same version, or not); never for order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kube.errors import InvalidObjectError

__all__ = ["ListMeta", "ObjectMeta", "OwnerReference", "name_of", "scalar", "section", "version_of"]


def _typed(value: Any, kind: type[Any], path: str, default: Any) -> Any:
    """``value`` when it is a ``kind``, ``default`` when absent, else the error naming ``path``."""
    if value is None:
        return default
    if kind is int and isinstance(value, bool):
        raise InvalidObjectError(path, f"expected an integer, got {value!r}")
    if not isinstance(value, kind):
        raise InvalidObjectError(path, f"expected {kind.__name__}, got {value!r}")
    return value


def scalar(obj: Mapping[str, Any], key: str, kind: type[Any], path: str, default: Any) -> Any:
    """``obj[key]`` when it is a ``kind``, ``default`` when absent; ``obj`` sits at ``path``."""
    return _typed(obj.get(key), kind, f"{path}.{key}" if path else key, default)


def section(obj: Mapping[str, Any], key: str, path: str = "") -> Mapping[str, Any]:
    """``obj[key]`` as a mapping ({} when absent); ``path`` is where ``obj`` sits."""
    where = f"{path}.{key}" if path else key
    found: Mapping[str, Any] = _typed(obj.get(key), Mapping, where, {})
    return found


def _strings(raw: Mapping[str, Any], key: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in section(raw, key, "metadata").items():
        out[str(k)] = _typed(v, str, f"metadata.{key}.{k}", "")
    return out


@dataclass(frozen=True)
class OwnerReference:
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool = False
    block_owner_deletion: bool = False


@dataclass(frozen=True)
class ObjectMeta:
    """An object's ``metadata``; the maps are read-only by convention (views are not hashed)."""

    name: str = ""
    namespace: str = ""
    """"" for cluster-scoped objects (and for namespaced ones the apiserver defaults)."""
    uid: str = ""
    resource_version: str = ""
    """Opaque: compare for equality only."""
    generation: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    owner_references: tuple[OwnerReference, ...] = ()
    finalizers: tuple[str, ...] = ()
    creation_timestamp: str = ""
    deletion_timestamp: str = ""
    """RFC 3339 when deletion was requested; "" while the object is live."""

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectMeta:
        """The metadata of ``obj`` (a whole object), or ``InvalidObjectError`` naming the field."""
        raw = section(obj, "metadata")

        def text(key: str) -> str:
            value: str = _typed(raw.get(key), str, f"metadata.{key}", "")
            return value

        owners = []
        for i, ref in enumerate(
            _typed(raw.get("ownerReferences"), list, "metadata.ownerReferences", [])
        ):
            path = f"metadata.ownerReferences[{i}]"
            ref = _typed(ref, Mapping, path, {})
            owners.append(
                OwnerReference(
                    api_version=_typed(ref.get("apiVersion"), str, f"{path}.apiVersion", ""),
                    kind=_typed(ref.get("kind"), str, f"{path}.kind", ""),
                    name=_typed(ref.get("name"), str, f"{path}.name", ""),
                    uid=_typed(ref.get("uid"), str, f"{path}.uid", ""),
                    controller=_typed(ref.get("controller"), bool, f"{path}.controller", False),
                    block_owner_deletion=_typed(
                        ref.get("blockOwnerDeletion"), bool, f"{path}.blockOwnerDeletion", False
                    ),
                )
            )
        finalizers = _typed(raw.get("finalizers"), list, "metadata.finalizers", [])
        return cls(
            name=text("name"),
            namespace=text("namespace"),
            uid=text("uid"),
            resource_version=text("resourceVersion"),
            generation=_typed(raw.get("generation"), int, "metadata.generation", None),
            labels=_strings(raw, "labels"),
            annotations=_strings(raw, "annotations"),
            owner_references=tuple(owners),
            finalizers=tuple(
                _typed(f, str, f"metadata.finalizers[{i}]", "") for i, f in enumerate(finalizers)
            ),
            creation_timestamp=text("creationTimestamp"),
            deletion_timestamp=text("deletionTimestamp"),
        )

    @property
    def key(self) -> tuple[str, str]:
        """(namespace, name), the key informers store objects under."""
        return self.namespace, self.name

    @property
    def deleting(self) -> bool:
        return bool(self.deletion_timestamp)


@dataclass(frozen=True)
class ListMeta:
    """A list response's ``metadata``: where the list stands and how to fetch the next page."""

    resource_version: str = ""
    continue_: str = ""

    @classmethod
    def of(cls, page: Mapping[str, Any]) -> ListMeta:
        raw = section(page, "metadata")
        return cls(
            resource_version=_typed(
                raw.get("resourceVersion"), str, "metadata.resourceVersion", ""
            ),
            continue_=_typed(raw.get("continue"), str, "metadata.continue", ""),
        )


def _loose(obj: Any, key: str) -> str:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    value = meta.get(key) if isinstance(meta, Mapping) else None
    return value if isinstance(value, str) else ""


def name_of(obj: Any) -> str:
    """``metadata.name`` of anything, "" when there is none: for messages about bad objects,
    where a second error while describing the first would hide it."""
    return _loose(obj, "name")


def version_of(obj: Any) -> str:
    """``metadata.resourceVersion`` of anything, "" when there is none (see ``name_of``)."""
    return _loose(obj, "resourceVersion")
