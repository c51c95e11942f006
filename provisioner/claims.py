"""The typed view of a NodeClaim, read once where the informer hands the object over.

Owns ``NodeClaimView`` (and its ``Condition``): every field the controllers and the cloud
providers read from a NodeClaim, parsed from the API server's JSON in one place. A field of the
wrong shape raises ``InvalidFieldError`` naming its path, so a malformed claim is reported and
left alone instead of failing a pass half-way. ``raw`` is the JSON as read, for the writes that
must send the original back (Events naming the object, status patches carrying the conditions).
It must not call the API server or decide anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kits import parse_duration as go_duration
from kits import parse_rfc3339
from kube import JSON, InvalidObjectError, ObjectMeta, scalar, section
from provisioner.errors import InvalidFieldError
from provisioner.labels import CAPACITY_TYPE, INSTANCE_TYPE, NODEPOOL, ZONE
from provisioner.model import Taint
from provisioner.parsing import requirements_from_k8s, taints_from_k8s
from provisioner.requirements import Requirements
from provisioner.resources import Resources

__all__ = ["Condition", "NodeClaimView", "NodeClassRef"]


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    """"True", "False" or "Unknown", as Kubernetes writes it."""
    reason: str = ""
    message: str = ""
    last_transition_time: str = ""
    observed_generation: int | None = None

    @property
    def true(self) -> bool:
        return self.status == "True"

    def to_k8s(self) -> JSON:
        out: JSON = {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "lastTransitionTime": self.last_transition_time,
        }
        if self.observed_generation is not None:
            out["observedGeneration"] = self.observed_generation
        return out


@dataclass(frozen=True)
class NodeClassRef:
    group: str = ""
    kind: str = ""
    name: str = ""


@dataclass(frozen=True)
class NodeClaimView:
    meta: ObjectMeta
    node_class_ref: NodeClassRef
    requirements: Requirements
    options: tuple[str, ...]
    """The instance types it may launch as (its ``In`` on the instance-type label), cheapest
    first: the order the provider tries them in."""
    requests: Resources
    taints: tuple[Taint, ...]
    startup_taints: tuple[Taint, ...]
    expire_after: str
    termination_grace_period: float | None
    """Seconds from the deletion timestamp by which the node is gone, pods or not (None:
    drain for as long as it takes)."""
    provider_id: str
    node_name: str
    conditions: Mapping[str, Condition]
    capacity: Resources
    allocatable: Resources
    """Both empty until launched: then the instance's own figures."""
    price: float
    """Dollars per hour once launched, else 0."""
    raw: JSON = field(repr=False, compare=False)

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> NodeClaimView:
        """The view of NodeClaim JSON, or ``InvalidFieldError`` naming the first bad field."""
        try:
            return cls._parse(obj)
        except InvalidObjectError as e:
            raise InvalidFieldError(e.field, e.message) from None

    @classmethod
    def _parse(cls, obj: Mapping[str, Any]) -> NodeClaimView:
        meta = ObjectMeta.of(obj)
        spec = section(obj, "spec")
        status = section(obj, "status")
        ref = section(spec, "nodeClassRef", "spec")
        reqs = scalar(spec, "requirements", list, "spec", [])
        options: tuple[str, ...] = ()
        for req in reqs:
            if isinstance(req, Mapping) and (req.get("key"), req.get("operator")) == (
                INSTANCE_TYPE,
                "In",
            ):
                options = tuple(str(v) for v in req.get("values") or [])
                break
        conditions: dict[str, Condition] = {}
        for i, raw in enumerate(scalar(status, "conditions", list, "status", [])):
            path = f"status.conditions[{i}]"
            if not isinstance(raw, Mapping):
                raise InvalidFieldError(path, f"expected an object, got {raw!r}")
            kind = scalar(raw, "type", str, path, "")
            if kind in conditions:
                continue  # the first of a type counts, as the API's own readers take it
            conditions[kind] = Condition(
                type=kind,
                status=scalar(raw, "status", str, path, ""),
                reason=scalar(raw, "reason", str, path, ""),
                message=scalar(raw, "message", str, path, ""),
                last_transition_time=scalar(raw, "lastTransitionTime", str, path, ""),
                observed_generation=scalar(raw, "observedGeneration", int, path, None),
            )
        price_text = scalar(status, "price", str, "status", "") or "0"
        try:
            price = float(price_text)
        except ValueError:
            raise InvalidFieldError("status.price", f"{price_text!r} is not a number") from None
        return cls(
            meta=meta,
            node_class_ref=NodeClassRef(
                group=scalar(ref, "group", str, "spec.nodeClassRef", ""),
                kind=scalar(ref, "kind", str, "spec.nodeClassRef", ""),
                name=scalar(ref, "name", str, "spec.nodeClassRef", ""),
            ),
            requirements=requirements_from_k8s(reqs, "spec.requirements"),
            options=options,
            requests=Resources.parse(
                section(section(spec, "resources", "spec"), "requests", "spec.resources"),
                field="spec.resources.requests",
            ),
            taints=taints_from_k8s(scalar(spec, "taints", list, "spec", []), "spec.taints"),
            startup_taints=taints_from_k8s(
                scalar(spec, "startupTaints", list, "spec", []), "spec.startupTaints"
            ),
            expire_after=scalar(spec, "expireAfter", str, "spec", ""),
            termination_grace_period=_duration(spec, "terminationGracePeriod"),
            provider_id=scalar(status, "providerID", str, "status", ""),
            node_name=scalar(status, "nodeName", str, "status", ""),
            conditions=conditions,
            capacity=Resources.parse(
                section(status, "capacity", "status"), field="status.capacity"
            ),
            allocatable=Resources.parse(
                section(status, "allocatable", "status"), field="status.allocatable"
            ),
            price=price,
            raw=dict(obj),
        )

    # -- what the controllers ask ----------------------------------------------------------

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def pool(self) -> str | None:
        """The NodePool it belongs to (its pool label), None when it carries none."""
        return self.meta.labels.get(NODEPOOL)

    @property
    def instance_type(self) -> str:
        """Set once launched (the launch writes the instance's labels), else ""."""
        return self.meta.labels.get(INSTANCE_TYPE, "")

    @property
    def capacity_type(self) -> str:
        return self.meta.labels.get(CAPACITY_TYPE, "")

    @property
    def zone(self) -> str:
        return self.meta.labels.get(ZONE, "")

    @property
    def deadline(self) -> datetime | None:
        """When its termination grace period runs out: set once it is deleting and has one."""
        deleted = self.meta.deletion_timestamp
        if not deleted or self.termination_grace_period is None:
            return None
        try:
            return parse_rfc3339(deleted) + timedelta(seconds=self.termination_grace_period)
        except ValueError:
            return None

    def is_true(self, kind: str) -> bool:
        cond = self.conditions.get(kind)
        return cond is not None and cond.true


def _duration(spec: Mapping[str, Any], key: str) -> float | None:
    text = scalar(spec, key, str, "spec", "")
    if not text:
        return None
    try:
        return go_duration(text)
    except ValueError:
        raise InvalidFieldError(
            f"spec.{key}", f"{text!r} is not a duration like 30s, 10m"
        ) from None
