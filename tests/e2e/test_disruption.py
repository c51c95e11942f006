"""Disruption against the real control plane: nodes come back down as the pods go.

The provisioner runs as a real process (kwok provider), the real scheduler binds the pods; the
tests hold whichever way a deleted NodeClaim's pods move (today's immediate node deletion, or a
drain), because they only wait for the states the cluster must reach.
"""

from __future__ import annotations

import pytest

from kube import JSON
from tests.e2e.test_provisioner import Tenant, _cost, crds, tenant
from tests.e2e.waiting import eventually

__all__ = ["crds", "tenant"]

FAST = ["--disruption-poll-interval=1s", "--disruption-validation-delay=1s"]


def _consolidating(t: Tenant, suffix: str, after: str = "10s") -> JSON:
    pool = t.pool_from_example(suffix)
    pool["spec"]["disruption"] = {
        "consolidationPolicy": "WhenEmptyOrUnderutilized",
        "consolidateAfter": after,
        "budgets": [{"nodes": "100%"}],
    }
    return pool


async def _cost_at_most(t: Tenant, pool: str, bound: float, what: str) -> list[JSON]:
    async def cheap() -> list[JSON] | None:
        nodes = await t.nodes(pool)
        return nodes if nodes and _cost(nodes) <= bound + 1e-9 else None

    return await eventually(cheap, within=90, what=what)


async def test_scale_down_consolidates_to_the_cheaper_pool(tenant: Tenant) -> None:
    tenant.flags = FAST
    await tenant.create_nodeclass()
    await tenant.start()
    pool = _consolidating(tenant, "seed")
    name = pool["metadata"]["name"]
    await tenant.create_pool(pool)
    await tenant.deployment("inflate", 12)
    await tenant.running("inflate", 12)
    await _cost_at_most(tenant, name, 0.768, "12 pods on at most $0.768/h")

    await tenant.scale("inflate", 5)
    await _cost_at_most(tenant, name, 0.384, "5 pods on at most $0.384/h")

    await tenant.scale("inflate", 1)

    async def one_small() -> list[JSON] | None:
        nodes = await tenant.nodes(name)
        types = [n["metadata"]["labels"]["node.kubernetes.io/instance-type"] for n in nodes]
        return nodes if types == ["c5.large"] else None

    await eventually(one_small, within=90, what="1 pod on exactly one c5.large")
    await tenant.running("inflate", 1)

    await tenant.scale("inflate", 0)

    async def none_left() -> bool | None:
        return True if not await tenant.nodes(name) else None

    await eventually(none_left, within=90, what="no node for 0 pods")


async def test_never_keeps_empty_nodes(tenant: Tenant) -> None:
    tenant.flags = FAST
    await tenant.create_nodeclass()
    await tenant.start()
    pool = _consolidating(tenant, "never", after="Never")
    name = pool["metadata"]["name"]
    await tenant.create_pool(pool)
    await tenant.deployment("inflate", 2)
    await tenant.running("inflate", 2)
    before = {n["metadata"]["name"] for n in await tenant.nodes(name)}
    await tenant.scale("inflate", 0)

    async def consolidatable_false() -> list[JSON] | None:
        claims = await tenant.claims(name)
        conds = [
            c
            for claim in claims
            for c in (claim.get("status") or {}).get("conditions") or []
            if c["type"] == "Consolidatable" and c["status"] == "False"
        ]
        return claims if len(conds) == len(claims) == len(before) else None

    await eventually(consolidatable_false, within=60, what="empty claims not Consolidatable")
    assert {n["metadata"]["name"] for n in await tenant.nodes(name)} == before


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
