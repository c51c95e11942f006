"""What a NodePool's status says about its nodes: the count, capacity and $/h columns, and
its NodeClaims by state."""

from __future__ import annotations

from typing import Any

from provisioner.claims import NodeClaimView
from provisioner.controllers.disruption import node_states
from provisioner.controllers.nodepools import NODE_STATES, pool_prices, states_status, usage_status
from provisioner.controllers.orchestration import COMMAND_ANNOTATION
from provisioner.labels import DISRUPTED_TAINT
from provisioner.resources import Resources


def claim(
    name: str, pool: str | None, price: str, *, launched: bool = True, **meta: Any
) -> NodeClaimView:
    labels = {"updraft.io/nodepool": pool} if pool else {}
    return NodeClaimView.parse(
        {
            "metadata": {"name": name, "labels": labels, **meta},
            "spec": {"nodeClassRef": {"group": "updraft.io", "kind": "NodeClass", "name": "kwok"}},
            "status": {
                "price": price,
                "conditions": [
                    {"type": "Launched", "status": "True" if launched else "False"},
                ],
            },
        }
    )


def test_pool_price_sums_launched_claims_only() -> None:
    prices = pool_prices(
        [
            claim("a", "general", "0.192"),
            claim("b", "general", "0.0416"),
            claim("c", "general", "0", launched=False),
            claim("d", "general", "1.5", deletionTimestamp="2026-01-01T00:00:00Z"),
            claim("e", "gpu", "3.06"),
            claim("f", None, "9"),
        ]
    )
    assert prices.keys() == {"general", "gpu"}
    assert abs(prices["general"] - 0.2336) < 1e-9
    assert prices["gpu"] == 3.06


def test_usage_status_fields() -> None:
    status = usage_status((2, Resources(), 0.2336))
    assert status["nodes"] == 2
    assert status["pricePerHour"] == "0.2336"
    assert isinstance(status["resources"], dict)
    assert usage_status((0, Resources(), 0.0))["pricePerHour"] == "0"
    # Float noise never reaches the column.
    assert usage_status((3, Resources(), 0.1 + 0.2))["pricePerHour"] == "0.3"


def _claim(name: str, pool: str, *true: str, **meta: Any) -> NodeClaimView:
    return NodeClaimView.parse(
        {
            "metadata": {"name": name, "labels": {"updraft.io/nodepool": pool}, **meta},
            "spec": {"nodeClassRef": {"group": "updraft.io", "kind": "NodeClass", "name": "k"}},
            "status": {
                "nodeName": name,
                "conditions": [{"type": k, "status": "True"} for k in true],
            },
        }
    )


def test_nodes_by_state_counts_each_claim_once_by_lifecycle_and_across_for_disruption() -> None:
    ready = ("Launched", "Registered", "Initialized")
    claims = [
        _claim("new", "general"),
        _claim("up", "general", "Launched"),
        _claim("reg", "general", "Launched", "Registered"),
        _claim("idle", "general", *ready, "Consolidatable"),
        _claim("old", "general", *ready, "Drifted"),
        _claim("moving", "general", *ready, annotations={COMMAND_ANNOTATION: "c1"}),
        _claim("tainted", "general", *ready),
        _claim("gone", "general", *ready, deletionTimestamp="2026-01-01T00:00:00Z"),
        _claim("gpu-1", "gpu", *ready),
    ]
    nodes = {
        "tainted": {
            "metadata": {"name": "tainted"},
            "spec": {"taints": [{"key": DISRUPTED_TAINT, "effect": "NoSchedule"}]},
        }
    }
    states = node_states({c.name: c for c in claims}, nodes)
    assert states["general"] == {
        "launching": 1,
        "launched": 1,
        "registered": 1,
        "initialized": 4,
        "deleting": 1,
        "consolidatable": 1,
        "drifted": 1,
        "disrupting": 3,  # the command's candidate, the tainted node, the deleting claim
    }
    assert states["gpu"]["initialized"] == 1
    # The status always carries every state, 0 for a pool with no claims at all.
    assert states_status(None) == dict.fromkeys(NODE_STATES, 0)
    assert states_status(states["gpu"])["initialized"] == 1
    assert list(states_status(states["general"])) == list(NODE_STATES)
