"""What `kubectl explain` and `kubectl get` show a user of our CRDs, from the real apiserver:
field descriptions, and a NodePool's nodes, CPU, memory and $/h after a provision."""

from __future__ import annotations

import asyncio
import re
import subprocess

import yaml

from tests.cluster.controlplane import REPO, ControlPlane, binary_dir
from tests.e2e.test_provisioner import (  # noqa: F401 (crds and tenant are fixtures)
    Tenant,
    _kubectl,
    crds,
    tenant,
)
from tests.e2e.waiting import eventually


def table(output: str) -> list[dict[str, str]]:
    """`kubectl get` rows keyed by column header (columns are separated by 2+ spaces)."""
    header, *rows = [line for line in output.splitlines() if line.strip()]
    names = re.split(r"\s{2,}", header.strip())
    return [dict(zip(names, re.split(r"\s{2,}", row.strip()), strict=True)) for row in rows]


async def test_explain_describes_every_trigger_field(crds: ControlPlane) -> None:  # noqa: F811
    crd = yaml.safe_load((REPO / "manifests/crds/metricsources.updraft.io.yaml").read_text())
    trigger = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"
    ]["trigger"]
    _kubectl(crds, "wait", "--for=condition=Established", "crd/metricsources.updraft.io")

    async def explained() -> str | None:
        # The CRD's OpenAPI is published a moment after it is Established.
        done = await asyncio.to_thread(
            subprocess.run,
            [
                str(binary_dir() / "kubectl"),
                f"--kubeconfig={crds.kubeconfig}",
                "explain",
                "metricsource.spec.trigger",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done.stdout if done.returncode == 0 and "FIELDS:" in done.stdout else None

    text = await eventually(explained, within=60, what="kubectl explain metricsource.spec.trigger")
    flat = " ".join(text.split())
    assert " ".join(trigger["description"].split()) in flat
    for name, field in trigger["properties"].items():
        assert name in text
        assert " ".join(field["description"].split()) in flat, name


async def test_get_nodepools_shows_nodes_cpu_memory_and_price(tenant: Tenant) -> None:  # noqa: F811
    await tenant.create_nodeclass()
    await tenant.start()
    pool = tenant.pool_from_example("views")
    name = pool["metadata"]["name"]
    await tenant.create_pool(pool)
    await tenant.deployment("one", 1)
    await tenant.running("one", 1)
    (claim,) = await tenant.claims(name)
    price = claim["status"]["price"]
    capacity = claim["status"]["capacity"]

    async def shown() -> dict[str, str] | None:
        out = await asyncio.to_thread(_kubectl, tenant.cp, "get", "nodepool", name)
        (row,) = table(out)
        return row if row["NODES"] == "1" and row["$/H"] == price else None

    row = await eventually(shown, within=30, what=f"kubectl get nodepool {name} with $/h")
    assert row["CPU"] == capacity["cpu"]
    assert row["MEMORY"] == capacity["memory"]
    claims = table(
        await asyncio.to_thread(
            _kubectl, tenant.cp, "get", "nodeclaims", "-l", f"updraft.io/nodepool={name}"
        )
    )
    assert [c["$/H"] for c in claims] == [price]
    assert float(price) > 0
