"""What a NodePool's status says about its nodes: the count, capacity and $/h columns."""

from __future__ import annotations

from typing import Any

from provisioner.claims import NodeClaimView
from provisioner.controllers.nodepools import pool_prices, usage_status
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
