"""The provisioner's Kubernetes objects: NodePool, NodeClaim and NodeClass JSON, both ways.

Owns the ``updraft.io/v1alpha1`` resources and the names written on them (labels, annotations,
the finalizer), validating a NodePool (with its NodeClass) into a ``model.NodePool``, building a
NodeClaim from a ``NodeClaimPlan``, reading nodes and in-flight NodeClaims back as ``NodeView``
for the next simulation, status conditions, and which pods are provisionable. It must not call
the API server: the controllers do, with what this module builds.

The pool label is ``updraft.io/nodepool`` (``labels.NODEPOOL``) on the wire and in the
simulation alike, so what a pod selects is exactly what a node carries.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from croniter import croniter

from kits import SystemClock, format_rfc3339
from kits import parse_duration as go_duration
from kube import JSON, ObjectMeta, Resource
from provisioner.catalog import Catalog, InstanceType
from provisioner.claims import NodeClaimView
from provisioner.errors import InvalidFieldError
from provisioner.labels import DISRUPTED_TAINT, INSTANCE_TYPE, NODEPOOL, ZONE
from provisioner.model import KubeletConfig, NodePool, NodeView, Taint
from provisioner.parsing import node_from_k8s, nodepool_from_k8s
from provisioner.quantity import format_cpu, format_quantity
from provisioner.requirements import Requirement, Requirements
from provisioner.resources import CPU, Resources
from provisioner.scheduling import NodeClaimPlan

__all__ = [
    "API_VERSION",
    "BATCH_ANNOTATION",
    "DAEMONSETS",
    "FINALIZER",
    "GROUP",
    "NODECLAIMS",
    "NODECLASSES",
    "NODECLASS_HASH_ANNOTATION",
    "NODEPOOLS",
    "NODEPOOL_HASH_ANNOTATION",
    "POOL_LABEL",
    "claim_view",
    "condition",
    "disrupted_taints",
    "is_provisionable",
    "node_view",
    "nodeclaim_from_plan",
    "nodeclass_hash",
    "parse_duration",
    "requirements_to_k8s",
    "resources_to_k8s",
    "taints_to_k8s",
    "template_hash",
    "validate_nodepool",
    "with_condition",
]

GROUP = "updraft.io"
API_VERSION = f"{GROUP}/v1alpha1"
NODEPOOLS = Resource(GROUP, "v1alpha1", "nodepools", namespaced=False)
NODECLAIMS = Resource(GROUP, "v1alpha1", "nodeclaims", namespaced=False)
NODECLASSES = Resource(GROUP, "v1alpha1", "nodeclasses", namespaced=False)
DAEMONSETS = Resource("apps", "v1", "daemonsets", namespaced=True)

POOL_LABEL = NODEPOOL
"""Which NodePool a NodeClaim and its Node belong to."""
BATCH_ANNOTATION = f"{GROUP}/batch"
"""The provisioning batch that created a NodeClaim: one burst of pods, one batch id."""
FINALIZER = f"{GROUP}/termination"
"""Held on every NodeClaim until its instance is gone, so no instance outlives its claim."""
NODEPOOL_HASH_ANNOTATION = f"{GROUP}/nodepool-hash"
"""The pool template's hash when the NodeClaim was made: a different hash now is drift."""
NODECLASS_HASH_ANNOTATION = f"{GROUP}/nodeclass-hash"
"""The NodeClass spec's hash when the NodeClaim was made: a different hash now is drift."""
_REASONS = ("Empty", "Drifted", "Underutilized")

_POLICIES = ("WhenEmpty", "WhenEmptyOrUnderutilized")
_DEFAULT_KUBELET = KubeletConfig()
_BUDGET_NODES = re.compile(r"^((100|[0-9]{1,2})%|[0-9]+)$")


def parse_duration(text: str, *, field: str, never: bool = False) -> float | None:
    """Seconds of a Go-style duration (``1h30m``, ``500ms``); ``Never`` is None when allowed."""
    if never and text == "Never":
        return None
    try:
        return go_duration(text)
    except ValueError:
        allowed = " or Never" if never else ""
        raise InvalidFieldError(
            field, f"{text!r} is not a duration like 30s, 10m, 1h30m{allowed}"
        ) from None


# --- conditions ---------------------------------------------------------------------------------


def _now() -> str:
    return format_rfc3339(SystemClock().now())


def condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            result: Mapping[str, Any] = cond
            return result
    return None


def is_true(obj: Mapping[str, Any], kind: str) -> bool:
    cond = condition(obj, kind)
    return cond is not None and cond.get("status") == "True"


def disrupted_taints(node: Mapping[str, Any], *, present: bool) -> list[JSON] | None:
    """The Node's taints with the disrupted taint (``DISRUPTED_TAINT``, NoSchedule) added or
    taken off; None when it already is as wanted (nothing to patch)."""
    taints = (node.get("spec") or {}).get("taints") or []
    if any(t.get("key") == DISRUPTED_TAINT for t in taints) == present:
        return None
    out = [dict(t) for t in taints if t.get("key") != DISRUPTED_TAINT]
    if present:
        out.append({"key": DISRUPTED_TAINT, "effect": "NoSchedule"})
    return out


def with_condition(
    conditions: Sequence[Mapping[str, Any]],
    kind: str,
    *,
    status: bool,
    reason: str,
    message: str = "",
    generation: int | None = None,
) -> list[JSON]:
    """``conditions`` with ``kind`` set; its transition time moves only when the status does."""
    wanted = "True" if status else "False"
    out: list[JSON] = []
    found = False
    for cond in conditions:
        if cond.get("type") != kind:
            out.append(dict(cond))
            continue
        found = True
        since = cond.get("lastTransitionTime") if cond.get("status") == wanted else None
        out.append(_condition(kind, wanted, reason, message, since, generation))
    if not found:
        out.append(_condition(kind, wanted, reason, message, None, generation))
    return out


def _condition(
    kind: str, status: str, reason: str, message: str, since: str | None, generation: int | None
) -> JSON:
    cond: JSON = {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since or _now(),
    }
    if generation is not None:
        cond["observedGeneration"] = generation
    return cond


# --- NodePool -----------------------------------------------------------------------------------


def _nodeclass_ref(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = spec.get("nodeClassRef")
    path = "spec.template.spec.nodeClassRef"
    if not isinstance(ref, Mapping):
        raise InvalidFieldError(path, "is required ({group: updraft.io, kind: NodeClass, name})")
    if ref.get("group") != GROUP or ref.get("kind") != "NodeClass":
        raise InvalidFieldError(
            path, f"must name an updraft.io NodeClass, got {ref.get('group')}/{ref.get('kind')}"
        )
    if not ref.get("name"):
        raise InvalidFieldError(f"{path}.name", "is required")
    return ref


def nodeclass_name(pool: Mapping[str, Any]) -> str:
    """The NodeClass a NodePool (JSON) names, or "" when it names none."""
    spec = ((pool.get("spec") or {}).get("template") or {}).get("spec") or {}
    ref = spec.get("nodeClassRef") or {}
    return str(ref.get("name") or "")


def _zones(nodeclass: Mapping[str, Any]) -> list[str]:
    zones = (nodeclass.get("spec") or {}).get("zones") or []
    return [str(z) for z in zones]


def launch_delay(nodeclass: Mapping[str, Any] | None) -> float:
    raw = ((nodeclass or {}).get("spec") or {}).get("launchDelay")
    if not raw:
        return 0.0
    return parse_duration(str(raw), field="spec.launchDelay") or 0.0


def _validate_disruption(spec: Mapping[str, Any]) -> None:
    disruption = spec.get("disruption") or {}
    path = "spec.disruption"
    policy = disruption.get("consolidationPolicy", "WhenEmptyOrUnderutilized")
    if policy not in _POLICIES:
        raise InvalidFieldError(
            f"{path}.consolidationPolicy", f"{policy!r} is not one of {_POLICIES}"
        )
    after = disruption.get("consolidateAfter")
    if after is not None:
        parse_duration(str(after), field=f"{path}.consolidateAfter", never=True)
    for i, budget in enumerate(disruption.get("budgets") or []):
        bpath = f"{path}.budgets[{i}]"
        nodes = str(budget.get("nodes", ""))
        if not _BUDGET_NODES.match(nodes):
            raise InvalidFieldError(f"{bpath}.nodes", f"{nodes!r} is not a count or a percent")
        if ("schedule" in budget) != ("duration" in budget):
            raise InvalidFieldError(bpath, "schedule and duration go together")
        if "duration" in budget:
            parse_duration(str(budget["duration"]), field=f"{bpath}.duration")
        if "schedule" in budget and not croniter.is_valid(str(budget["schedule"])):
            raise InvalidFieldError(
                f"{bpath}.schedule",
                f"{budget['schedule']!r} is not a cron expression like '0 9 * * mon-fri'",
            )
        for j, reason in enumerate(budget.get("reasons") or []):
            if reason not in _REASONS:
                raise InvalidFieldError(
                    f"{bpath}.reasons[{j}]", f"{reason!r} is not one of {_REASONS}"
                )


def validate_nodepool(
    obj: Mapping[str, Any], nodeclass: Mapping[str, Any] | None, catalog: Catalog
) -> NodePool:
    """The scheduling view of a NodePool, or ``InvalidFieldError`` naming the bad field.

    Beyond the field syntax it refuses what could never launch a node: a requirement no value
    satisfies (``In [a]`` with ``NotIn [a]``), requirements no instance type of ``catalog``
    meets, and a NodeClass whose zones the requirements exclude. The NodeClass's zones are
    folded into the returned pool's requirements.
    """
    spec = obj.get("spec") or {}
    tspec = (spec.get("template") or {}).get("spec") or {}
    _nodeclass_ref(tspec)
    pool = nodepool_from_k8s(obj)
    if "expireAfter" in tspec:
        parse_duration(
            str(tspec["expireAfter"]), field="spec.template.spec.expireAfter", never=True
        )
    if "terminationGracePeriod" in tspec:
        parse_duration(
            str(tspec["terminationGracePeriod"]),
            field="spec.template.spec.terminationGracePeriod",
        )
    _validate_disruption(spec)
    rpath = "spec.template.spec.requirements"
    for key, req in pool.requirements.items():
        if req.is_empty():
            raise InvalidFieldError(rpath, f"no value of {key} satisfies every requirement on it")
    if nodeclass is None:
        raise InvalidFieldError(
            "spec.template.spec.nodeClassRef.name", f"NodeClass {nodeclass_name(obj)!r} not found"
        )
    zones = _zones(nodeclass)
    requirements = pool.requirements
    if zones:
        zone_req = Requirement.any_of(ZONE, zones)
        mine = requirements.get(ZONE)
        if mine is not None and not mine.intersects(zone_req):
            raise InvalidFieldError(
                rpath, f"{ZONE}: {mine} excludes every zone of NodeClass {nodeclass_name(obj)!r}"
            )
        requirements = requirements.add(zone_req)
    pool = dataclasses.replace(pool, requirements=requirements)
    template = pool.template_requirements()
    types = catalog.instance_types(pool.kubelet)
    if not any(
        t.requirements.conflict(template) is None and t.cheapest(template) is not None
        for t in types
    ):
        for key, req in requirements.items():
            alone = Requirements([req])
            if not any(t.requirements.conflict(alone) is None for t in types):
                raise InvalidFieldError(rpath, f"no instance type has {key} {req}")
        raise InvalidFieldError(
            rpath, "no instance type with an available offering meets all requirements together"
        )
    return pool


# --- NodeClaim ----------------------------------------------------------------------------------


def resources_to_k8s(resources: Resources) -> dict[str, str]:
    return {
        name: format_cpu(amount) if name == CPU else format_quantity(amount)
        for name, amount in resources.items()
    }


def requirements_to_k8s(
    requirements: Requirements, *, ordered: Mapping[str, Sequence[str]] | None = None
) -> list[JSON]:
    """Node selector requirements meaning ``requirements``; ``ordered`` gives the order of an
    ``In`` key's values (the instance types, cheapest first)."""
    out: list[JSON] = []
    for key in sorted(requirements):
        req = requirements[key]
        extra: JSON = {"minValues": req.min_values} if req.min_values else {}
        if not req.complement:
            if req.values:
                order = list((ordered or {}).get(key, ()))
                values = [v for v in order if v in req.values]
                values += sorted(req.values - set(values))
                out.append({"key": key, "operator": "In", "values": values, **extra})
            elif req.absent:
                out.append({"key": key, "operator": "DoesNotExist"})
            continue
        if req.greater_than is not None:
            out.append({"key": key, "operator": "Gt", "values": [str(req.greater_than)]})
        if req.less_than is not None:
            out.append({"key": key, "operator": "Lt", "values": [str(req.less_than)]})
        if req.values:
            out.append({"key": key, "operator": "NotIn", "values": sorted(req.values), **extra})
        if not req.absent and req.greater_than is None and req.less_than is None:
            out.append({"key": key, "operator": "Exists", **extra})
    return out


def taints_to_k8s(taints: Iterable[Taint]) -> list[JSON]:
    out: list[JSON] = []
    for t in taints:
        taint: JSON = {"key": t.key, "effect": t.effect}
        if t.value:
            taint["value"] = t.value
        out.append(taint)
    return out


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def template_hash(pool: Mapping[str, Any]) -> str:
    """The stable hash of a NodePool's ``spec.template`` without its requirements (a
    requirement change drifts only the nodes it no longer admits, judged by their labels)."""
    template = dict((pool.get("spec") or {}).get("template") or {})
    tspec = dict(template.get("spec") or {})
    tspec.pop("requirements", None)
    template["spec"] = tspec
    return _digest(template)


def nodeclass_hash(nodeclass: Mapping[str, Any] | None) -> str:
    """The stable hash of a NodeClass's spec ("" when there is none)."""
    if nodeclass is None:
        return ""
    return _digest(nodeclass.get("spec") or {})


def nodeclaim_from_plan(
    plan: NodeClaimPlan,
    *,
    name: str,
    pool: Mapping[str, Any],
    batch: str,
    nodeclass: Mapping[str, Any] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> JSON:
    """The NodeClaim object for ``plan``, owned by its NodePool (JSON ``pool``), carrying the
    hashes of the pool's template and of ``nodeclass`` (drift is told by them)."""
    meta = ObjectMeta.of(pool)
    template = (pool.get("spec") or {}).get("template") or {}
    tmeta = ObjectMeta.of(template)
    tspec = template.get("spec") or {}
    types = [t.name for t in plan.instance_types]
    requirements = plan.requirements.add(Requirement.any_of(INSTANCE_TYPE, types))
    spec: JSON = {
        "requirements": requirements_to_k8s(requirements, ordered={INSTANCE_TYPE: types}),
        "resources": {"requests": resources_to_k8s(plan.requests)},
        "nodeClassRef": dict(tspec.get("nodeClassRef") or {}),
    }
    if plan.taints:
        spec["taints"] = taints_to_k8s(plan.taints)
    if plan.startup_taints:
        spec["startupTaints"] = taints_to_k8s(plan.startup_taints)
    if tspec.get("expireAfter"):
        spec["expireAfter"] = tspec["expireAfter"]
    if tspec.get("terminationGracePeriod"):
        spec["terminationGracePeriod"] = tspec["terminationGracePeriod"]
    labels = {**tmeta.labels, **plan.labels}
    labels[POOL_LABEL] = plan.nodepool
    return {
        "apiVersion": API_VERSION,
        "kind": "NodeClaim",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                **tmeta.annotations,
                **(annotations or {}),
                BATCH_ANNOTATION: batch,
                NODEPOOL_HASH_ANNOTATION: template_hash(pool),
                NODECLASS_HASH_ANNOTATION: nodeclass_hash(nodeclass),
            },
            "finalizers": [FINALIZER],
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "NodePool",
                    "name": meta.name or plan.nodepool,
                    "uid": meta.uid,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }


def claim_requirements(claim: Mapping[str, Any]) -> Requirements:
    return NodeClaimView.parse(claim).requirements


def claim_options(claim: Mapping[str, Any]) -> list[str]:
    """The instance types a NodeClaim may launch as, in its order (cheapest first)."""
    return list(NodeClaimView.parse(claim).options)


def claim_view(
    claim: NodeClaimView | Mapping[str, Any],
    catalog: Catalog,
    kubelet: KubeletConfig = _DEFAULT_KUBELET,
) -> NodeView:
    """An in-flight NodeClaim as the simulation sees it: no pods yet, so pending pods fill it.

    Before launch its allocatable is the smallest of its options (any may be the one launched)
    and its capacity the largest (what it may count against limits); after launch, the
    instance's own figures from the status. JSON is parsed into a ``NodeClaimView`` first.
    """
    view = claim if isinstance(claim, NodeClaimView) else NodeClaimView.parse(claim)
    labels = dict(view.meta.labels)
    for key, value in view.requirements.single_values().items():
        labels.setdefault(key, value)
    if view.allocatable != Resources():
        allocatable, capacity = view.allocatable, view.capacity
    else:
        by_name = {t.name: t for t in catalog.instance_types(kubelet)}
        options: list[InstanceType] = [by_name[n] for n in view.options if n in by_name]
        allocatable = _extreme([t.allocatable for t in options], min)
        capacity = _extreme([t.capacity for t in options], max)
    return NodeView(
        name=view.name,
        labels=labels,
        allocatable=allocatable,
        capacity=capacity,
        taints=(*view.taints, *view.startup_taints),
        startup_taints=view.startup_taints,
        initialized=False,
        in_flight=True,
    )


def _extreme(vectors: Sequence[Resources], pick: Any) -> Resources:
    if not vectors:
        return Resources()
    names = set().union(*(v.names() for v in vectors))
    return Resources.of({n: pick(v.get(n) for v in vectors) for n in names})


def node_view(
    node: Mapping[str, Any],
    pods: Iterable[Mapping[str, Any]],
    *,
    startup_taints: tuple[Taint, ...] = (),
    initialized: bool = True,
) -> NodeView:
    """A Node with the pods bound to it, labels in the simulation's vocabulary."""
    view = node_from_k8s(node, pods, initialized=initialized)
    return dataclasses.replace(view, startup_taints=startup_taints)


# --- pods ---------------------------------------------------------------------------------------


def is_provisionable(pod: Mapping[str, Any]) -> bool:
    """A pod the scheduler found no node for: ``PodScheduled=False/Unschedulable``, unbound,
    not preempting, not terminating, not a DaemonSet's or a static pod."""
    meta = ObjectMeta.of(pod)
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    if spec.get("nodeName") or meta.deleting or status.get("nominatedNodeName"):
        return False
    if status.get("phase", "Pending") != "Pending":
        return False
    if "kubernetes.io/config.mirror" in meta.annotations:
        return False
    if any(o.kind == "DaemonSet" for o in meta.owner_references):
        return False
    cond = condition(pod, "PodScheduled")
    return (
        cond is not None and cond.get("status") == "False" and cond.get("reason") == "Unschedulable"
    )
