"""The AWS catalog: capacity, allocatable (Karpenter's formulas), offerings and prices."""

from __future__ import annotations

import pytest

from provisioner import Catalog, InstanceType, KubeletConfig, Resources
from provisioner.catalog import kube_reserved_cpu
from provisioner.labels import ARCH, CAPACITY_TYPE, INSTANCE_TYPE, ZONE
from provisioner.requirements import Requirement, Requirements

MI = 2**20


def by_name(kubelet: KubeletConfig | None = None) -> dict[str, InstanceType]:
    return {t.name: t for t in Catalog.aws().instance_types(kubelet or KubeletConfig())}


def test_catalog_covers_the_priced_types() -> None:
    catalog = Catalog.aws()
    assert len(catalog.instance_types()) == 1340
    assert catalog.zones == tuple(f"us-east-1{z}" for z in "abcdef")
    assert catalog.prices["m5.large"] == 0.096


@pytest.mark.parametrize(
    ("name", "pods", "cpu", "memory_mi"),
    [("m5.large", 29, 1930, 6903), ("a1.medium", 8, 940, 1392)],
)
def test_allocatable_matches_karpenter(name: str, pods: int, cpu: int, memory_mi: int) -> None:
    itype = by_name()[name]
    assert itype.capacity.pods == pods
    assert itype.allocatable.cpu == cpu
    assert itype.allocatable.memory == memory_mi * MI
    assert itype.allocatable.pods == pods


@pytest.mark.parametrize(
    ("vcpus", "millis"),
    # 60 + 10 + 5 + 5 for 4 cores, then 2.5 per core (rounded up once at the end).
    [(1, 60), (2, 70), (3, 75), (4, 80), (5, 83), (8, 90), (96, 310)],
)
def test_kube_reserved_cpu_tiers(vcpus: int, millis: int) -> None:
    assert kube_reserved_cpu(vcpus) == millis


def test_kubelet_overrides() -> None:
    types = by_name(KubeletConfig(max_pods=200, pods_per_core=10))
    # 2 vCPU x 10 pods per core caps maxPods 200.
    assert types["m5.large"].capacity.pods == 20
    custom = by_name(
        KubeletConfig(kube_reserved=Resources(cpu=500), system_reserved=Resources(cpu=100))
    )
    assert custom["m5.large"].allocatable.cpu == 2000 - 600
    # Eviction: defaults 100Mi memory; a percentage is of capacity.
    evict = by_name(KubeletConfig(eviction_hard=(("memory.available", "10%"),)))
    cap = evict["m5.large"].capacity.memory
    assert evict["m5.large"].allocatable.memory == cap - (11 * 29 + 255) * MI - cap // 10 - (
        cap % 10 > 0
    )


def test_gpu_types_expose_the_extended_resource() -> None:
    g4 = by_name()["g4dn.xlarge"]
    assert g4.capacity.get("nvidia.com/gpu") == 1
    assert g4.requirements["karpenter.k8s.aws/instance-gpu-name"].single_value() == "t4"


def test_offerings_and_spot_model() -> None:
    m5 = by_name()["m5.large"]
    assert len(m5.offerings) == 12  # 6 zones x 2 capacity types
    spot_a = next(o for o in m5.offerings if o.zone == "us-east-1a" and o.capacity_type == "spot")
    spot_b = next(o for o in m5.offerings if o.zone == "us-east-1b" and o.capacity_type == "spot")
    assert spot_a.price == round(0.096 * 0.38, 6)
    assert spot_b.price == round(0.096 * 0.38 * 1.03, 6)
    on_demand = Requirements([Requirement.any_of(CAPACITY_TYPE, ["on-demand"])])
    cheapest = m5.cheapest(on_demand)
    assert cheapest is not None
    assert (cheapest.capacity_type, cheapest.price) == ("on-demand", 0.096)
    assert m5.requirements[INSTANCE_TYPE].single_value() == "m5.large"
    assert m5.requirements[ARCH].single_value() == "amd64"
    assert by_name()["a1.medium"].requirements[ARCH].single_value() == "arm64"


def test_unavailable_offerings_are_skipped() -> None:
    catalog = Catalog.aws()
    zone_a = Requirements([Requirement.any_of(ZONE, ["us-east-1a"])])
    gone = frozenset({("m5.large", "us-east-1a", "spot"), ("m5.large", "us-east-1a", "on-demand")})
    m5 = {t.name: t for t in catalog.instance_types(unavailable=gone)}["m5.large"]
    assert m5.cheapest(zone_a) is None
    assert m5.cheapest() is not None
