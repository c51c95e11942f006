"""What a provisioning pass tells the simulation the cluster is (``cluster_views``)."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio import client

from kube import Api, Event
from provisioner import Catalog
from provisioner.controllers.provisioning import cluster_views
from provisioner.controllers.state import ClusterState
from provisioner.labels import UNREGISTERED_TAINT
from provisioner.scheduling import simulate
from tests.unit.provisioner.builders import nodepool, pods
from tests.unit.provisioner.test_claims import LAUNCHED


@pytest.fixture
async def state() -> AsyncIterator[ClusterState]:
    api_client = client.ApiClient(client.Configuration(host="http://127.0.0.1:9"))
    try:
        yield ClusterState(Api(api_client))  # never started: fed by hand
    finally:
        await api_client.close()


def _booting_node(claim: dict[str, Any]) -> dict[str, Any]:
    """The node of ``claim``, registered, still carrying what it boots with."""
    meta, spec = claim["metadata"], claim["spec"]
    return {
        "metadata": {"name": claim["status"]["nodeName"], "labels": dict(meta["labels"])},
        "spec": {
            "providerID": claim["status"]["providerID"],
            "taints": [
                *spec["taints"],
                *spec["startupTaints"],
                {"key": UNREGISTERED_TAINT, "effect": "NoExecute"},
            ],
        },
        "status": {
            "capacity": {"cpu": "2", "memory": "8Gi", "pods": "29"},
            "allocatable": {"cpu": "1930m", "memory": "7Gi", "pods": "29"},
        },
    }


def test_a_booting_node_still_takes_the_pods_it_was_launched_for(state: ClusterState) -> None:
    """Its startup and unregistered taints go away before its pods run: the next pass must
    not launch another node for the pods still waiting on it."""
    claim = copy.deepcopy(LAUNCHED)
    state.apply(Event("ADDED", claim))
    state.nodes.store[("", claim["metadata"]["name"])] = _booting_node(claim)
    views = cluster_views(state, pool=lambda _: None, catalog=Catalog.aws())
    (view,) = views
    assert not view.initialized
    waiting = pods("web", 1, cpu="1", spec={"tolerations": [{"key": "dedicated", "value": "web"}]})
    result = simulate(waiting, nodepools=[nodepool()], catalog=Catalog.aws(), nodes=views)
    assert result.new_claims == ()
    assert [node for _, node in result.placed] == [claim["status"]["nodeName"]]


def test_an_initialized_node_keeps_every_taint(state: ClusterState) -> None:
    claim = copy.deepcopy(LAUNCHED)
    claim["status"]["conditions"].append(
        {"type": "Initialized", "status": "True", "reason": "Initialized", "message": ""}
    )
    state.apply(Event("ADDED", claim))
    state.nodes.store[("", claim["metadata"]["name"])] = _booting_node(claim)
    (view,) = cluster_views(state, pool=lambda _: None, catalog=Catalog.aws())
    assert view.initialized
    assert UNREGISTERED_TAINT in {t.key for t in view.taints}
