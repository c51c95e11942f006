"""The Kubernetes JSON boundary: build ``model`` views from core/v1 and karpenter.sh/v1 objects.

Owns reading Pod, DaemonSet, Node and NodePool JSON (as returned by the API server, already
decoded to dicts) into the frozen views of ``model``, including the pod request rules: requests
are max(sum of running containers, largest init-container phase) plus ``spec.overhead``, where
init containers with ``restartPolicy: Always`` (sidecars) run alongside the app containers and
under every later init container. Only the fields scheduling needs are read; every other field is
ignored, which is why this module reads dicts with path-checked accessors instead of a
``extra="forbid"`` schema (a Pod has hundreds of fields we deliberately do not model). Every
malformed field raises ``InvalidFieldError`` naming its path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kits import parse_rfc3339
from provisioner.errors import InvalidFieldError
from provisioner.labels import HOSTNAME, ZONE
from provisioner.model import (
    AffinityTerm,
    HostPort,
    KubeletConfig,
    NodePool,
    NodeView,
    Pod,
    SpreadConstraint,
    Taint,
    Toleration,
)
from provisioner.requirements import Requirement, Requirements
from provisioner.resources import Resources

__all__ = [
    "label_selector",
    "node_from_k8s",
    "nodepool_from_k8s",
    "pod_from_k8s",
    "pod_from_template",
    "requirements_from_k8s",
    "taints_from_k8s",
]

_EFFECTS = frozenset({"NoSchedule", "PreferNoSchedule", "NoExecute"})
_SUPPORTED_TOPOLOGY_KEYS = frozenset({ZONE, HOSTNAME})


def _map(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidFieldError(f"{path}.{key}", f"expected an object, got {type(value).__name__}")
    return value


def _list(obj: Mapping[str, Any], key: str, path: str) -> Sequence[Any]:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidFieldError(f"{path}.{key}", f"expected a list, got {type(value).__name__}")
    return value


def _str(obj: Mapping[str, Any], key: str, path: str, default: str = "") -> str:
    value = obj.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidFieldError(f"{path}.{key}", f"expected a string, got {value!r}")
    return value


def _int(obj: Mapping[str, Any], key: str, path: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidFieldError(f"{path}.{key}", f"expected an integer, got {value!r}")
    return value


def _str_map(obj: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
    out = {}
    for k, v in _map(obj, key, path).items():
        if not isinstance(v, str):
            raise InvalidFieldError(f"{path}.{key}.{k}", f"expected a string, got {v!r}")
        out[k] = v
    return out


def _items(seq: Sequence[Any], path: str) -> Iterable[tuple[Mapping[str, Any], str]]:
    for i, item in enumerate(seq):
        if not isinstance(item, Mapping):
            raise InvalidFieldError(f"{path}[{i}]", "expected an object")
        yield item, f"{path}[{i}]"


# --- requirements and selectors ---------------------------------------------------------------


def _requirement(item: Mapping[str, Any], path: str, *, node: bool) -> Requirement:
    values = _list(item, "values", path)
    if not all(isinstance(v, str) for v in values):
        raise InvalidFieldError(f"{path}.values", "values must be strings")
    operator = _str(item, "operator", path)
    if not node and operator in ("Gt", "Lt"):
        raise InvalidFieldError(f"{path}.operator", f"{operator} is not valid in a label selector")
    return Requirement.new(
        _str(item, "key", path),
        operator,
        values,
        min_values=_int(item, "minValues", path),
        field=path,
    )


def requirements_from_k8s(items: Sequence[Any], path: str) -> Requirements:
    """A list of node selector requirements (``{key, operator, values, minValues}``)."""
    return Requirements(_requirement(item, p, node=True) for item, p in _items(items, path))


def label_selector(obj: Mapping[str, Any], key: str, path: str) -> Requirements | None:
    """The metav1 LabelSelector at ``obj[key]`` as requirements, ``path`` naming it in errors;
    None when absent (matches nothing)."""
    raw = obj.get(key)
    if raw is None:
        return None
    sel_path = f"{path}.{key}"
    if not isinstance(raw, Mapping):
        raise InvalidFieldError(sel_path, "expected an object")
    reqs = [Requirement.any_of(k, (v,)) for k, v in _str_map(raw, "matchLabels", sel_path).items()]
    exprs = _list(raw, "matchExpressions", sel_path)
    reqs += [
        _requirement(i, p, node=False) for i, p in _items(exprs, f"{sel_path}.matchExpressions")
    ]
    return Requirements(reqs)


def _node_selector_term(term: Mapping[str, Any], path: str) -> Requirements:
    if _list(term, "matchFields", path):
        raise InvalidFieldError(f"{path}.matchFields", "matchFields is not supported")
    return requirements_from_k8s(_list(term, "matchExpressions", path), f"{path}.matchExpressions")


# --- pods -------------------------------------------------------------------------------------


def _container_requests(container: Mapping[str, Any], path: str) -> Resources:
    resources = _map(container, "resources", path)
    requests = _map(resources, "requests", f"{path}.resources")
    if not requests:
        # The API server defaults requests to limits when only limits are set.
        return Resources.parse(
            _map(resources, "limits", f"{path}.resources"), field=f"{path}.resources.limits"
        )
    return Resources.parse(requests, field=f"{path}.resources.requests")


def pod_requests(spec: Mapping[str, Any], path: str = "spec") -> Resources:
    """Effective requests: max(running containers + sidecars, each init phase) + overhead."""
    running = Resources()
    for container, p in _items(_list(spec, "containers", path), f"{path}.containers"):
        running += _container_requests(container, p)
    sidecars = Resources()
    init_peak = Resources()
    for container, p in _items(_list(spec, "initContainers", path), f"{path}.initContainers"):
        requests = _container_requests(container, p)
        if _str(container, "restartPolicy", p) == "Always":
            # A sidecar keeps running: it adds to the steady state and to every later phase.
            running += requests
            sidecars += requests
            init_peak = init_peak.max(sidecars)
        else:
            init_peak = init_peak.max(requests + sidecars)
    overhead = Resources.parse(_map(spec, "overhead", path), field=f"{path}.overhead")
    return running.max(init_peak) + overhead


def _affinity_terms(
    terms: Sequence[Any], path: str, namespace: str, *, preferred: bool
) -> list[AffinityTerm]:
    out = []
    for raw, p in _items(terms, path):
        weight = 0
        term, term_path = raw, p
        if preferred:
            weight = _int(raw, "weight", p) or 0
            term, term_path = _map(raw, "podAffinityTerm", p), f"{p}.podAffinityTerm"
        key = _str(term, "topologyKey", term_path)
        if key not in _SUPPORTED_TOPOLOGY_KEYS:
            raise InvalidFieldError(
                f"{term_path}.topologyKey", f"{key!r} is not supported (only {ZONE}, {HOSTNAME})"
            )
        namespaces = frozenset(_list(term, "namespaces", term_path))
        ns_selector = term.get("namespaceSelector")
        all_namespaces = False
        if ns_selector is not None:
            if ns_selector:
                raise InvalidFieldError(
                    f"{term_path}.namespaceSelector", "only the empty selector (all) is supported"
                )
            all_namespaces = True
        elif not namespaces:
            namespaces = frozenset({namespace})
        out.append(
            AffinityTerm(
                topology_key=key,
                selector=label_selector(term, "labelSelector", term_path),
                namespaces=namespaces,
                all_namespaces=all_namespaces,
                weight=weight,
            )
        )
    return out


def _spread(
    spec: Mapping[str, Any], namespace: str, labels: Mapping[str, str]
) -> tuple[SpreadConstraint, ...]:
    out = []
    for raw, p in _items(
        _list(spec, "topologySpreadConstraints", "spec"), "spec.topologySpreadConstraints"
    ):
        key = _str(raw, "topologyKey", p)
        if key not in _SUPPORTED_TOPOLOGY_KEYS:
            raise InvalidFieldError(
                f"{p}.topologyKey", f"{key!r} is not supported (only {ZONE}, {HOSTNAME})"
            )
        max_skew = _int(raw, "maxSkew", p)
        if max_skew is None or max_skew < 1:
            raise InvalidFieldError(f"{p}.maxSkew", "must be an integer >= 1")
        when = _str(raw, "whenUnsatisfiable", p, "DoNotSchedule")
        if when not in ("DoNotSchedule", "ScheduleAnyway"):
            raise InvalidFieldError(
                f"{p}.whenUnsatisfiable", f"{when!r} is not DoNotSchedule or ScheduleAnyway"
            )
        selector = label_selector(raw, "labelSelector", p)
        match_keys = [k for k in _list(raw, "matchLabelKeys", p) if k in labels]
        if selector is not None and match_keys:
            selector = selector.add(*(Requirement.any_of(k, (labels[k],)) for k in match_keys))
        out.append(
            SpreadConstraint(
                topology_key=key,
                max_skew=max_skew,
                required=when == "DoNotSchedule",
                selector=selector,
                namespace=namespace,
                min_domains=_int(raw, "minDomains", p),
                honor_node_affinity=_str(raw, "nodeAffinityPolicy", p, "Honor") == "Honor",
            )
        )
    return tuple(out)


def _tolerations(spec: Mapping[str, Any], path: str) -> tuple[Toleration, ...]:
    out = []
    for raw, p in _items(_list(spec, "tolerations", path), f"{path}.tolerations"):
        operator = _str(raw, "operator", p, "Equal")
        if operator not in ("Equal", "Exists"):
            raise InvalidFieldError(f"{p}.operator", f"{operator!r} is not Equal or Exists")
        out.append(
            Toleration(
                key=_str(raw, "key", p),
                operator=operator,
                value=_str(raw, "value", p),
                effect=_str(raw, "effect", p),
            )
        )
    return tuple(out)


def taints_from_k8s(items: Sequence[Any], path: str) -> tuple[Taint, ...]:
    out = []
    for raw, p in _items(items, path):
        effect = _str(raw, "effect", p)
        if effect not in _EFFECTS:
            raise InvalidFieldError(f"{p}.effect", f"{effect!r} is not one of {sorted(_EFFECTS)}")
        out.append(Taint(key=_str(raw, "key", p), value=_str(raw, "value", p), effect=effect))
    return tuple(out)


def _host_ports(spec: Mapping[str, Any]) -> tuple[HostPort, ...]:
    out = []
    for kind in ("initContainers", "containers"):
        for container, cp in _items(_list(spec, kind, "spec"), f"spec.{kind}"):
            for port, p in _items(_list(container, "ports", cp), f"{cp}.ports"):
                host_port = _int(port, "hostPort", p)
                if host_port:
                    out.append(
                        HostPort(
                            port=host_port,
                            protocol=_str(port, "protocol", p, "TCP"),
                            host_ip=_str(port, "hostIP", p),
                        )
                    )
    return tuple(out)


def _timestamp(meta: Mapping[str, Any]) -> float:
    raw = _str(meta, "creationTimestamp", "metadata")
    if not raw:
        return 0.0
    try:
        return parse_rfc3339(raw).timestamp()
    except ValueError as exc:
        raise InvalidFieldError("metadata.creationTimestamp", f"{raw!r} is not RFC 3339") from exc


_PARSED: dict[tuple[str, str], Pod] = {}
"""(uid, resourceVersion) -> the Pod parsed from that version of the object. The API server
gives every change a new resourceVersion, so one version always parses the same; provisioning
and disruption passes parse every bound pod again and again."""
_PARSED_MAX = 100_000


def pod_from_k8s(obj: Mapping[str, Any]) -> Pod:
    """A core/v1 Pod (dict) as the scheduler sees it."""
    meta = _map(obj, "metadata", "")
    uid, version = meta.get("uid"), meta.get("resourceVersion")
    cached = isinstance(uid, str) and isinstance(version, str) and bool(uid) and bool(version)
    key = (str(uid), str(version))
    if cached and (hit := _PARSED.get(key)) is not None:
        return hit
    spec = _map(obj, "spec", "")
    pod = _pod(meta, spec, namespace=_str(meta, "namespace", "metadata", "default"))
    if cached:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[key] = pod
    return pod


def pod_from_template(daemonset: Mapping[str, Any]) -> Pod:
    """The pod a DaemonSet (apps/v1 dict) would put on every node it selects."""
    meta = _map(daemonset, "metadata", "")
    template = _map(_map(daemonset, "spec", ""), "template", "spec")
    spec = _map(template, "spec", "spec.template")
    pod_meta = dict(_map(template, "metadata", "spec.template"))
    pod_meta.setdefault("name", _str(meta, "name", "metadata"))
    pod_meta.setdefault("namespace", _str(meta, "namespace", "metadata", "default"))
    return _pod(pod_meta, spec, namespace=_str(pod_meta, "namespace", "metadata", "default"))


def _pod(meta: Mapping[str, Any], spec: Mapping[str, Any], *, namespace: str) -> Pod:
    labels = _str_map(meta, "labels", "metadata")
    node_selector = Requirements.from_labels(_str_map(spec, "nodeSelector", "spec"))
    affinity = _map(spec, "affinity", "spec")
    node_aff = _map(affinity, "nodeAffinity", "spec.affinity")
    na_path = "spec.affinity.nodeAffinity"
    required = _map(node_aff, "requiredDuringSchedulingIgnoredDuringExecution", na_path)
    rp = f"{na_path}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
    terms = [
        node_selector.intersect(_node_selector_term(t, p))
        for t, p in _items(_list(required, "nodeSelectorTerms", rp.rsplit(".", 1)[0]), rp)
    ]
    preferred = []
    pp = f"{na_path}.preferredDuringSchedulingIgnoredDuringExecution"
    for raw, p in _items(
        _list(node_aff, "preferredDuringSchedulingIgnoredDuringExecution", na_path), pp
    ):
        preferred.append(
            (
                _int(raw, "weight", p) or 0,
                _node_selector_term(_map(raw, "preference", p), f"{p}.preference"),
            )
        )
    preferred.sort(key=lambda wt: -wt[0])  # stable: equal weights keep their order

    def pod_terms(kind: str, mode: str, *, pref: bool) -> list[AffinityTerm]:
        path = f"spec.affinity.{kind}"
        block = _map(affinity, kind, "spec.affinity")
        return _affinity_terms(
            _list(block, mode, path), f"{path}.{mode}", namespace, preferred=pref
        )

    req_mode = "requiredDuringSchedulingIgnoredDuringExecution"
    pref_mode = "preferredDuringSchedulingIgnoredDuringExecution"
    pref_aff = pod_terms("podAffinity", pref_mode, pref=True)
    pref_anti = pod_terms("podAntiAffinity", pref_mode, pref=True)
    return Pod(
        name=_str(meta, "name", "metadata"),
        namespace=namespace,
        uid=_str(meta, "uid", "metadata"),
        created=_timestamp(meta),
        labels=labels,
        requests=pod_requests(spec),
        required_terms=tuple(terms) or (node_selector,),
        preferred_terms=tuple(preferred),
        tolerations=_tolerations(spec, "spec"),
        affinity=tuple(pod_terms("podAffinity", req_mode, pref=False)),
        anti_affinity=tuple(pod_terms("podAntiAffinity", req_mode, pref=False)),
        preferred_affinity=tuple(sorted(pref_aff, key=lambda t: t.weight)),
        preferred_anti_affinity=tuple(sorted(pref_anti, key=lambda t: t.weight)),
        spread=_spread(spec, namespace, labels),
        host_ports=_host_ports(spec),
    )


# --- nodes and node pools ---------------------------------------------------------------------


def node_from_k8s(
    node: Mapping[str, Any], pods: Iterable[Mapping[str, Any]] = (), *, initialized: bool = True
) -> NodeView:
    """A core/v1 Node (dict) with the pods bound to it (terminated pods should be left out)."""
    meta = _map(node, "metadata", "")
    status = _map(node, "status", "")
    spec = _map(node, "spec", "")
    allocatable = Resources.parse(_map(status, "allocatable", "status"), field="status.allocatable")
    capacity = Resources.parse(_map(status, "capacity", "status"), field="status.capacity")
    return NodeView(
        name=_str(meta, "name", "metadata"),
        labels=_str_map(meta, "labels", "metadata"),
        allocatable=allocatable,
        capacity=capacity if capacity != Resources() else allocatable,
        taints=taints_from_k8s(_list(spec, "taints", "spec"), "spec.taints"),
        pods=tuple(pod_from_k8s(p) for p in pods),
        initialized=initialized,
    )


def _kubelet(spec: Mapping[str, Any], path: str) -> KubeletConfig:
    raw = _map(spec, "kubelet", path)
    kp = f"{path}.kubelet"
    kube_reserved = _map(raw, "kubeReserved", kp)
    eviction = _str_map(raw, "evictionHard", kp)
    return KubeletConfig(
        max_pods=_int(raw, "maxPods", kp),
        pods_per_core=_int(raw, "podsPerCore", kp),
        system_reserved=Resources.parse(
            _map(raw, "systemReserved", kp), field=f"{kp}.systemReserved"
        ),
        kube_reserved=Resources.parse(kube_reserved, field=f"{kp}.kubeReserved")
        if kube_reserved
        else None,
        eviction_hard=tuple(sorted(eviction.items())),
    )


def nodepool_from_k8s(obj: Mapping[str, Any]) -> NodePool:
    """A karpenter.sh/v1 NodePool (dict). ``spec.template.spec.kubelet`` is read here (v1beta1
    placement; v1 moved it to the NodeClass, whose kubelet block the caller may splice in)."""
    meta = _map(obj, "metadata", "")
    spec = _map(obj, "spec", "")
    template = _map(spec, "template", "spec")
    tmeta = _map(template, "metadata", "spec.template")
    tspec = _map(template, "spec", "spec.template")
    tp = "spec.template.spec"
    weight = _int(spec, "weight", "spec") or 0
    if not 0 <= weight <= 100:
        raise InvalidFieldError("spec.weight", f"{weight} is not in 0..100")
    raw_limits = _map(spec, "limits", "spec")
    return NodePool(
        name=_str(meta, "name", "metadata"),
        weight=weight,
        labels=_str_map(tmeta, "labels", "spec.template.metadata"),
        taints=taints_from_k8s(_list(tspec, "taints", tp), f"{tp}.taints"),
        startup_taints=taints_from_k8s(_list(tspec, "startupTaints", tp), f"{tp}.startupTaints"),
        requirements=requirements_from_k8s(_list(tspec, "requirements", tp), f"{tp}.requirements"),
        limits=Resources.parse(raw_limits, field="spec.limits") if raw_limits else None,
        limit_names=frozenset(raw_limits),
        kubelet=_kubelet(tspec, tp),
    )
