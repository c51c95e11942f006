"""The pod-by-pod pass on its own (pods the repack pass leaves alone): cost on small batches
against the brute-force optimum, with every constraint kept."""

from __future__ import annotations

import pytest

from provisioner import Pod
from provisioner.labels import ZONE
from provisioner.scheduling import simulate

from ..brute_force import CATALOG, GRAVITON, brute_force, holds, priced_types
from ..builders import ON_DEMAND, nodepool, pod, types_in

# (cpu millicores, memory MiB) per pod; before claims could be joined at no extra cost or grown
# into a bigger type, the pass cost $0.314/h, $0.426/h, $0.503/h, $0.376/h and $0.281/h for them
# with host ports ($0.373/h, $0.426/h for the first two with the zone spread).
CASES = [
    [(250, 1024), (500, 512), (250, 4096), (250, 2048), (250, 4096), (750, 256), (500, 512),
     (1000, 1024)],
    [(500, 512), (1000, 1024), (250, 3072), (750, 1024), (1000, 256), (250, 256), (500, 3072),
     (500, 256)],
    [(1000, 3072), (1000, 4096), (1000, 2048), (1000, 512), (750, 256), (250, 512), (1000, 512),
     (750, 4096)],
    [(1000, 4096), (750, 2048), (1000, 3072), (750, 3072), (1000, 3072), (500, 1024), (250, 1024),
     (500, 4096)],
    [(750, 256), (250, 256), (250, 512), (1000, 1024), (750, 512), (250, 1024), (750, 1024),
     (500, 2048)],
]  # fmt: skip

ZONE_SPREAD = {
    "topologySpreadConstraints": [
        {
            "maxSkew": 8,
            "topologyKey": ZONE,
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "spread"}},
        }
    ]
}


def _with_port(i: int, cpu: int, mem: int) -> Pod:
    container = {
        "name": "app",
        "ports": [{"containerPort": 8000 + i, "hostPort": 8000 + i}],
        "resources": {"requests": {"cpu": f"{cpu}m", "memory": f"{mem}Mi"}},
    }
    return pod(f"p{i}", f"{cpu}m", f"{mem}Mi", spec={"containers": [container]})


def _check(batch: list[Pod]) -> None:
    pool = nodepool(requirements=[ON_DEMAND, types_in(*GRAVITON)])
    result = simulate(batch, nodepools=[pool], catalog=CATALOG)
    assert result.unschedulable == ()
    assert sorted(p.name for c in result.new_claims for p in c.pods) == sorted(
        p.name for p in batch
    )
    assert result.price == pytest.approx(brute_force(batch, GRAVITON))
    priced = priced_types(GRAVITON)
    for claim in result.new_claims:
        # Still every compatible type that holds the claim's pods, cheapest first.
        assert [t.name for t in claim.instance_types] == [
            t.name for _, t in priced if holds(t, claim.pods)
        ]


@pytest.mark.parametrize("sizes", CASES)
def test_host_port_pods_get_the_brute_force_optimum(sizes: list[tuple[int, int]]) -> None:
    # A host port (none shared) on every other pod: no claim holds only free pods, so the
    # repack pass leaves the packing to the pod-by-pod pass.
    _check(
        [
            _with_port(i, c, m) if i % 2 == 0 else pod(f"p{i}", f"{c}m", f"{m}Mi")
            for i, (c, m) in enumerate(sizes)
        ]
    )


@pytest.mark.parametrize("sizes", CASES[:2])
def test_zone_spread_pods_get_the_brute_force_optimum(sizes: list[tuple[int, int]]) -> None:
    # A zone spread loose enough never to bind; the pods are not free, so no repack either.
    _check(
        [
            pod(f"p{i}", f"{c}m", f"{m}Mi", labels={"app": "spread"}, spec=ZONE_SPREAD)
            for i, (c, m) in enumerate(sizes)
        ]
    )
