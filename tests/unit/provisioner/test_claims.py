"""NodeClaimView parsing and ClusterState's NodeClaims: opaque resourceVersions, bad claims
reported and skipped."""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio import client

from kube import Api, Event
from provisioner.claims import Condition, NodeClaimView, NodeClassRef
from provisioner.controllers.state import ClusterState
from provisioner.errors import InvalidFieldError
from provisioner.labels import CAPACITY_TYPE, INSTANCE_TYPE, NODEPOOL, ZONE
from provisioner.model import Taint
from provisioner.resources import Resources

LAUNCHED: dict[str, Any] = {
    "apiVersion": "updraft.io/v1alpha1",
    "kind": "NodeClaim",
    "metadata": {
        "name": "default-x7k2p",
        "uid": "8c1d2e3f-0000-4000-8000-000000000001",
        "resourceVersion": "4711",
        "generation": 1,
        "creationTimestamp": "2025-01-02T03:04:05Z",
        "labels": {
            NODEPOOL: "default",
            INSTANCE_TYPE: "m5.large",
            ZONE: "us-east-1a",
            CAPACITY_TYPE: "on-demand",
        },
        "annotations": {"updraft.io/batch": "0123456789ab"},
        "finalizers": ["updraft.io/termination"],
        "ownerReferences": [
            {"apiVersion": "updraft.io/v1alpha1", "kind": "NodePool", "name": "default", "uid": "p"}
        ],
    },
    "spec": {
        "nodeClassRef": {"group": "updraft.io", "kind": "NodeClass", "name": "default"},
        "requirements": [
            {"key": INSTANCE_TYPE, "operator": "In", "values": ["m5.large", "c5.xlarge"]},
            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
        ],
        "resources": {"requests": {"cpu": "1500m", "memory": "2Gi", "pods": "3"}},
        "taints": [{"key": "dedicated", "value": "web", "effect": "NoSchedule"}],
        "startupTaints": [{"key": "node.example.com/init", "effect": "NoExecute"}],
        "expireAfter": "720h",
    },
    "status": {
        "providerID": "kwok://default-x7k2p",
        "nodeName": "default-x7k2p",
        "capacity": {"cpu": "2", "memory": "8Gi", "pods": "29"},
        "allocatable": {"cpu": "1930m", "memory": "7Gi", "pods": "29"},
        "price": "0.096",
        "conditions": [
            {
                "type": "Launched",
                "status": "True",
                "reason": "Launched",
                "message": "launched m5.large",
                "lastTransitionTime": "2025-01-02T03:04:10Z",
            },
            {"type": "Registered", "status": "False", "reason": "Waiting", "message": ""},
        ],
    },
}


def test_a_launched_claim_parses_into_its_view() -> None:
    view = NodeClaimView.parse(LAUNCHED)
    assert view.name == "default-x7k2p"
    assert view.meta.uid == "8c1d2e3f-0000-4000-8000-000000000001"
    assert view.meta.resource_version == "4711"
    assert view.meta.finalizers == ("updraft.io/termination",)
    assert view.meta.annotations == {"updraft.io/batch": "0123456789ab"}
    assert view.pool == "default"
    assert (view.instance_type, view.zone, view.capacity_type) == (
        "m5.large",
        "us-east-1a",
        "on-demand",
    )
    assert view.node_class_ref == NodeClassRef("updraft.io", "NodeClass", "default")
    assert view.options == ("m5.large", "c5.xlarge")
    assert view.requirements.single_values() == {"kubernetes.io/arch": "amd64"}
    assert view.requests == Resources.parse(
        {"cpu": "1500m", "memory": "2Gi", "pods": "3"}, field=""
    )
    assert view.taints == (Taint("dedicated", "web", "NoSchedule"),)
    assert view.startup_taints == (Taint("node.example.com/init", "", "NoExecute"),)
    assert view.expire_after == "720h"
    assert view.provider_id == "kwok://default-x7k2p"
    assert view.node_name == "default-x7k2p"
    assert view.capacity.cpu == 2000
    assert view.allocatable.cpu == 1930
    assert view.price == pytest.approx(0.096)
    assert view.conditions["Launched"] == Condition(
        "Launched", "True", "Launched", "launched m5.large", "2025-01-02T03:04:10Z"
    )
    assert view.is_true("Launched")
    assert not view.is_true("Registered")
    assert not view.is_true("Initialized")
    assert view.raw == LAUNCHED
    assert [c.to_k8s()["type"] for c in view.conditions.values()] == ["Launched", "Registered"]


def test_a_fresh_claim_has_zero_status() -> None:
    fresh = {k: v for k, v in LAUNCHED.items() if k != "status"}
    view = NodeClaimView.parse(fresh)
    assert view.provider_id == ""
    assert view.conditions == {}
    assert view.allocatable == Resources()
    assert view.price == 0.0


def _broken(path: str, value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(LAUNCHED)
    *parents, last = path.split(".")
    at = obj
    for key in parents:
        at = at[key]
    at[last] = value
    return obj


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("metadata.labels", {NODEPOOL: 3}, f"metadata.labels.{NODEPOOL}"),
        ("metadata.finalizers", "updraft.io/termination", "metadata.finalizers"),
        ("spec.requirements", {"key": "x"}, "spec.requirements"),
        ("spec.resources", {"requests": {"cpu": "lots"}}, "spec.resources.requests.cpu"),
        ("spec.taints", [{"key": "k", "effect": "Sometimes"}], "spec.taints[0].effect"),
        ("spec.nodeClassRef", "default", "spec.nodeClassRef"),
        ("status.providerID", 42, "status.providerID"),
        (
            "status.conditions",
            [{"type": "Launched", "status": True}],
            "status.conditions[0].status",
        ),
        ("status.allocatable", {"memory": "-1Gi"}, "status.allocatable.memory"),
        ("status.price", "cheap", "status.price"),
    ],
)
def test_a_bad_field_is_named(path: str, value: Any, field: str) -> None:
    with pytest.raises(InvalidFieldError) as err:
        NodeClaimView.parse(_broken(path, value))
    assert err.value.field == field


# --- ClusterState -------------------------------------------------------------------------------


@pytest.fixture
async def state() -> AsyncIterator[ClusterState]:
    api_client = client.ApiClient(client.Configuration(host="http://127.0.0.1:9"))
    try:
        yield ClusterState(Api(api_client))  # never started: fed events by hand
    finally:
        await api_client.close()


def _claim(name: str, version: str, **status: Any) -> dict[str, Any]:
    obj = copy.deepcopy(LAUNCHED)
    obj["metadata"].update(name=name, resourceVersion=version)
    obj["status"] = status
    return obj


def test_our_write_is_seen_until_the_watch_delivers_its_version(state: ClusterState) -> None:
    """resourceVersions are opaque: "a10" after "b9", nothing ordered, only matched."""
    state.apply(Event("ADDED", _claim("c", "b9")))
    state.note(_claim("c", "a10", providerID="kwok://c"))
    # The echo of an earlier write arrives first: ours still wins.
    state.apply(Event("MODIFIED", _claim("c", "z1")))
    seen = state.claim("c")
    assert seen is not None
    assert seen.provider_id == "kwok://c"
    assert state.claims()["c"].meta.resource_version == "a10"
    # The watch delivers our version: the informer's copy is current again.
    state.apply(Event("MODIFIED", _claim("c", "a10", providerID="kwok://c")))
    state.apply(Event("MODIFIED", _claim("c", "q7", providerID="kwok://c", nodeName="n")))
    assert state.claims()["c"].node_name == "n"


def test_a_write_the_watch_already_delivered_is_not_kept(state: ClusterState) -> None:
    state.apply(Event("ADDED", _claim("c", "5")))
    state.apply(Event("MODIFIED", _claim("c", "7", nodeName="newer")))
    state.note(_claim("c", "5"))  # our write's response, read after the watch moved on
    assert state.claims()["c"].node_name == "newer"
    state.note(_claim("d", "1"))  # created, not yet echoed: in flight, not missing
    assert set(state.claims()) == {"c", "d"}
    state.apply(Event("DELETED", _claim("d", "2")))
    assert set(state.claims()) == {"c"}


def test_our_write_that_took_the_last_finalizer_off_is_not_kept_after_the_delete(
    state: ClusterState,
) -> None:
    """The DELETED event can come before our patch's response: the claim is gone all the same."""
    state.apply(Event("ADDED", _claim("c", "5")))
    state.apply(Event("DELETED", _claim("c", "6")))
    gone = _claim("c", "6")
    gone["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z", finalizers=[])
    state.note(gone)
    assert state.claims() == {}
    assert state.claim("c") is None


def test_a_malformed_claim_is_set_aside_and_the_others_keep_working(
    state: ClusterState, caplog: pytest.LogCaptureFixture
) -> None:
    state.apply(Event("ADDED", _claim("good", "1")))
    with caplog.at_level(logging.WARNING):
        state.apply(Event("ADDED", _broken("status.price", "cheap")))
    assert set(state.claims()) == {"good"}
    bad = state.rejected["default-x7k2p"]
    assert bad.error.field == "status.price"
    assert "status.price" in caplog.text
    # Fixed on the next version: back in, no longer rejected.
    state.apply(Event("MODIFIED", LAUNCHED))
    assert set(state.claims()) == {"good", "default-x7k2p"}
    assert state.rejected == {}


def _pod(name: str, node: str | None, phase: str = "Running", **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", **meta},
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase},
    }


def test_pods_already_there_at_the_first_list_are_no_pod_event(state: ClusterState) -> None:
    state.apply_pod(Event("ADDED", _pod("a", "n1")), initial=True)
    assert state.take_pod_moves() == set()
    state.apply_pod(Event("DELETED", _pod("a", "n1")))
    assert state.take_pod_moves() == {"n1"}
    assert state.take_pod_moves() == set()


def test_a_pod_that_comes_and_goes_between_two_passes_is_a_pod_event(
    state: ClusterState,
) -> None:
    state.apply_pod(Event("ADDED", _pod("a", None)))  # pending: on no node
    assert state.take_pod_moves() == set()
    state.apply_pod(Event("MODIFIED", _pod("a", "n1")))
    state.apply_pod(Event("MODIFIED", _pod("a", "n1", deletionTimestamp="2026-01-01T00:00:00Z")))
    state.apply_pod(Event("DELETED", _pod("a", "n1")))
    assert state.take_pod_moves() == {"n1"}


def test_status_changes_are_no_pod_event_but_finishing_is(state: ClusterState) -> None:
    state.apply_pod(Event("ADDED", _pod("a", "n1", phase="Pending")), initial=True)
    state.apply_pod(Event("MODIFIED", _pod("a", "n1")))
    state.apply_pod(Event("MODIFIED", _pod("a", "n1", labels={"x": "y"})))
    assert state.take_pod_moves() == set()
    state.apply_pod(Event("MODIFIED", _pod("a", "n1", phase="Succeeded")))
    assert state.take_pod_moves() == {"n1"}
    state.apply_pod(Event("DELETED", _pod("a", "n1", phase="Succeeded")))
    assert state.take_pod_moves() == set()
