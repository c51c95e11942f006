"""The drain's decisions: which pods go in which order, which are waited for, and when the
termination grace period forces a pod out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from kits.clock import format_rfc3339
from kube import JSON
from provisioner.controllers.termination import delete_at, plan_drain

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def _pod(name: str, **kw: Any) -> JSON:
    meta: JSON = {"name": name, "namespace": "ns", "uid": name}
    spec: JSON = {"nodeName": "n1"}
    if kw.get("critical"):
        spec["priorityClassName"] = "system-node-critical"
    if "grace" in kw:
        spec["terminationGracePeriodSeconds"] = kw["grace"]
    if kw.get("daemon"):
        meta["ownerReferences"] = [{"kind": "DaemonSet", "name": "ds", "uid": "x"}]
    if kw.get("mirror"):
        meta["annotations"] = {"kubernetes.io/config.mirror": "abc"}
    if "annotations" in kw:
        meta["annotations"] = kw["annotations"]
    if "deleted_ago" in kw:
        meta["deletionTimestamp"] = format_rfc3339(NOW - timedelta(seconds=kw["deleted_ago"]))
    return {"metadata": meta, "spec": spec, "status": {"phase": kw.get("phase", "Running")}}


def _names(pods: tuple[JSON, ...]) -> set[str]:
    return {p["metadata"]["name"] for p in pods}


def test_ordinary_pods_go_before_critical_ones() -> None:
    pods = [_pod("web"), _pod("dns", critical=True)]
    first = plan_drain(pods, now=NOW, deadline=None)
    assert _names(first.evict) == {"web"}
    assert _names(first.left) == {"web", "dns"}
    # While web is still terminating, the critical pod keeps waiting.
    second = plan_drain([_pod("web", deleted_ago=5), pods[1]], now=NOW, deadline=None)
    assert second.evict == ()
    third = plan_drain([pods[1]], now=NOW, deadline=None)
    assert _names(third.evict) == {"dns"}


def test_daemonset_mirror_finished_and_long_terminating_pods_do_not_hold_the_node() -> None:
    pods = [
        _pod("agent", daemon=True),
        _pod("static", mirror=True),
        _pod("job", phase="Succeeded"),
        _pod("stuck", deleted_ago=61),
    ]
    drain = plan_drain(pods, now=NOW, deadline=None)
    assert drain.done
    assert drain.evict == ()
    # A pod terminating for under a minute is still waited for, and not evicted again.
    recent = plan_drain([_pod("leaving", deleted_ago=30)], now=NOW, deadline=None)
    assert not recent.done
    assert recent.evict == ()


def test_do_not_disrupt_pods_are_waited_for_not_evicted() -> None:
    pods = [
        _pod("a", annotations={"karpenter.sh/do-not-disrupt": "true"}),
        _pod("b", annotations={"updraft.io/do-not-disrupt": "true"}),
        _pod("c", annotations={"updraft.io/do-not-disrupt": "false"}),
    ]
    drain = plan_drain(pods, now=NOW, deadline=None)
    assert _names(drain.evict) == {"c"}
    assert _names(drain.waiting) == {"a", "b"}
    assert not drain.done


def test_the_deadline_less_each_pods_grace_forces_deletion() -> None:
    deadline = NOW + timedelta(seconds=20)
    assert delete_at(deadline, 30) == NOW - timedelta(seconds=10)
    pods = [
        _pod("slow", grace=30, annotations={"karpenter.sh/do-not-disrupt": "true"}),
        _pod("fast", grace=5),
        _pod("default"),  # 30 s when unset
    ]
    drain = plan_drain(pods, now=NOW, deadline=deadline)
    assert _names(drain.delete) == {"slow", "default"}
    assert _names(drain.evict) == {"fast"}
    assert drain.waiting == ()
    # Exactly at deadline - grace it is deleted; a moment before, it is not.
    edge = [_pod("edge", grace=20)]
    assert _names(plan_drain(edge, now=NOW, deadline=deadline).delete) == {"edge"}
    early = NOW - timedelta(seconds=1)
    assert plan_drain(edge, now=early, deadline=deadline).delete == ()
    # Without a grace period on the claim nothing is ever forced.
    assert plan_drain(pods, now=NOW + timedelta(days=1), deadline=None).delete == ()
