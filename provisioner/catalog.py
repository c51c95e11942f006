"""The instance-type catalog: AWS types as Karpenter sees them, with offerings and allocatable.

Owns ``InstanceType`` and ``Offering`` and the loading of the package's data files
(``data/aws-instance-types.json``, generated from moto's EC2 facts by ``hack/gen_catalog.py``;
``data/aws-ondemand-prices-us-east-1.json``, a copy of the shared price snapshot). It must not
talk to AWS or Kubernetes.

Capacity (facts from Karpenter's AWS provider):

- cpu = vCPUs; memory = MiB, minus 64 MiB on arm64, minus ceil(7.5 %) of that for the VM;
  ephemeral-storage = 20Gi (the default root volume); GPUs as ``nvidia.com/gpu`` / ``amd.com/gpu``;
- pods = kubelet ``maxPods`` if set, else ENIs x (IPv4 per ENI - 1) + 2 on the default network
  card; ``podsPerCore`` x vCPU caps it.

Allocatable = capacity - kubeReserved - systemReserved - evictionHard, where the AWS defaults
are kube-reserved CPU 6 % of the first core + 1 % of the second + 0.5 % of cores 3-4 + 0.25 % of
every further core (rounded up to a millicore), memory 11 MiB x pods + 255 MiB, ephemeral 1Gi;
eviction memory.available 100Mi and nodefs.available 10 %. A user ``kubeReserved`` replaces the
defaults, ``evictionHard`` overrides them signal by signal. m5.large gives 29 pods, 1930m cpu and
6903Mi memory; a1.medium 8 pods, 940m, 1392Mi.

Offerings are every zone of the region x {on-demand, spot}; an offering is available when the
type is offered in that zone (and, for spot, sold as spot). On-demand prices are the snapshot's.
Spot prices are a deterministic model, not market data: on-demand x a category discount factor
x a small zone step, so that spot is cheaper than on-demand and zones are distinguishable::

    spot = on_demand * SPOT_FACTOR.get(category, 0.40) * (1 + 0.03 * zone_index)

where ``category`` is the letters before the generation digit (``m`` for m5, ``inf`` for inf2)
and ``zone_index`` the zone's position in the region's sorted zone list (us-east-1a = 0).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from provisioner import labels as lbl
from provisioner.errors import CatalogError
from provisioner.model import KubeletConfig
from provisioner.quantity import parse_quantity
from provisioner.requirements import Requirement, Requirements
from provisioner.resources import Resources

__all__ = ["SPOT_FACTOR", "Catalog", "InstanceType", "Offering", "kube_reserved_cpu"]

MIB = 2**20
GIB = 2**30
SPOT_FACTOR: Mapping[str, float] = {
    "c": 0.36,
    "m": 0.38,
    "r": 0.34,
    "t": 0.32,
    "a": 0.40,
    "i": 0.30,
    "d": 0.30,
    "x": 0.32,
    "z": 0.35,
    "g": 0.45,
    "p": 0.50,
}
"""Spot price as a fraction of on-demand by instance category (model, see module docstring)."""
_ZONE_STEP = 0.03
_VM_OVERHEAD = 0.075
_ROOT_VOLUME = 20 * GIB
_DEFAULT_KUBELET = KubeletConfig()
_FAMILY = re.compile(r"^(?P<category>[a-z]+)(?P<generation>\d+)")


@dataclass(frozen=True, slots=True)
class Offering:
    zone: str
    capacity_type: str
    price: float
    """USD per hour."""
    available: bool = True


@dataclass(frozen=True, slots=True, eq=False)
class InstanceType:
    name: str
    requirements: Requirements
    """Every well-known label the type defines (zone and capacity-type list its offerings)."""
    capacity: Resources
    overhead: Resources
    """kubeReserved + systemReserved + eviction threshold."""
    allocatable: Resources
    offerings: tuple[Offering, ...]

    def cheapest(self, requirements: Requirements | None = None) -> Offering | None:
        """The cheapest available offering whose zone and capacity type ``requirements`` admit."""
        zone = requirements.find(lbl.ZONE) if requirements is not None else None
        ctype = requirements.find(lbl.CAPACITY_TYPE) if requirements is not None else None
        best: Offering | None = None
        for o in self.offerings:
            if not o.available or (best is not None and o.price >= best.price):
                continue
            if zone is not None and not zone.has(o.zone):
                continue
            if ctype is not None and not ctype.has(o.capacity_type):
                continue
            best = o
        return best


def kube_reserved_cpu(vcpus: int) -> int:
    """AWS default kube-reserved CPU in millicores for ``vcpus`` cores (tiered percentages)."""
    # Thousandths of a millicore keep the 0.25 % tier exact before rounding up.
    micro = 0
    for core in range(1, vcpus + 1):
        micro += 60_000 if core == 1 else 10_000 if core == 2 else 5_000 if core <= 4 else 2_500
    return math.ceil(micro / 1000)


def _eviction(kubelet: KubeletConfig, capacity: Resources) -> Resources:
    signals = {"memory.available": "100Mi", "nodefs.available": "10%"}
    signals.update(dict(kubelet.eviction_hard))

    def amount(signal: str, total: int) -> int:
        raw = signals.get(signal)
        if raw is None:
            return 0
        field = f"kubelet.evictionHard.{signal}"
        if raw.endswith("%"):
            return math.ceil(parse_quantity(raw[:-1], field=field) * total / 100)
        return math.ceil(parse_quantity(raw, field=field))

    return Resources(
        memory=amount("memory.available", capacity.memory),
        ephemeral_storage=amount("nodefs.available", capacity.ephemeral_storage),
    )


def _split_name(name: str) -> tuple[str, str, str, str]:
    family, _, size = name.partition(".")
    match = _FAMILY.match(family)
    if match is None:
        return family, family, "", size
    return family, match["category"], match["generation"], size


class Catalog:
    """Instance types of one region, built per kubelet configuration (which changes allocatable)."""

    def __init__(
        self, specs: Iterable[Mapping[str, Any]], prices: Mapping[str, float], *, region: str
    ) -> None:
        self.region = region
        self._specs = tuple(s for s in specs if s["name"] in prices)
        self.prices = dict(prices)
        self.zones = tuple(sorted({z for s in self._specs for z in s["zones"]}))
        self._built: dict[
            tuple[KubeletConfig, frozenset[tuple[str, str, str]]], tuple[InstanceType, ...]
        ] = {}

    @staticmethod
    @cache
    def aws() -> Catalog:
        """The packaged AWS us-east-1 catalog (loaded once per process)."""
        data = resources.files("provisioner") / "data"
        try:
            types = json.loads((data / "aws-instance-types.json").read_text())
            prices = json.loads((data / "aws-ondemand-prices-us-east-1.json").read_text())
        except (OSError, ValueError) as exc:
            raise CatalogError(f"cannot read the packaged AWS catalog: {exc}") from exc
        if types.get("region") != prices.get("region"):
            raise CatalogError("instance-type and price data are for different regions")
        return Catalog(types["instanceTypes"], prices["prices"], region=types["region"])

    def names(self) -> list[str]:
        return [s["name"] for s in self._specs]

    def instance_types(
        self,
        kubelet: KubeletConfig = _DEFAULT_KUBELET,
        *,
        unavailable: frozenset[tuple[str, str, str]] = frozenset(),
    ) -> tuple[InstanceType, ...]:
        """All types for ``kubelet``; ``unavailable`` holds (type, zone, capacity type) to mark
        unavailable, e.g. after an insufficient-capacity error."""
        key = (kubelet, unavailable)
        built = self._built.get(key)
        if built is None:
            built = tuple(self._build(s, kubelet, unavailable) for s in self._specs)
            self._built[key] = built
        return built

    def _build(
        self,
        spec: Mapping[str, Any],
        kubelet: KubeletConfig,
        unavailable: frozenset[tuple[str, str, str]],
    ) -> InstanceType:
        name: str = spec["name"]
        vcpu: int = spec["vcpu"]
        arch: str = spec["arch"]
        family, category, generation, size = _split_name(name)
        mem_mib: int = spec["memoryMiB"] - (64 if arch == "arm64" else 0)
        mem_mib -= math.ceil(mem_mib * _VM_OVERHEAD)
        pods = kubelet.max_pods
        if pods is None:
            pods = spec["enis"] * (spec["ipv4PerEni"] - 1) + 2
        if kubelet.pods_per_core is not None:
            pods = min(pods, kubelet.pods_per_core * vcpu)
        extended: dict[str, int] = {}
        gpus = spec.get("gpuCount", 0)
        if gpus and spec.get("gpuManufacturer") == "nvidia":
            extended["nvidia.com/gpu"] = gpus
        elif gpus and spec.get("gpuManufacturer") == "amd":
            extended["amd.com/gpu"] = gpus
        capacity = Resources.of(
            {
                "cpu": vcpu * 1000,
                "memory": mem_mib * MIB,
                "pods": pods,
                "ephemeral-storage": _ROOT_VOLUME,
                **extended,
            }
        )
        kube_reserved = kubelet.kube_reserved
        if kube_reserved is None:
            kube_reserved = Resources(
                cpu=kube_reserved_cpu(vcpu),
                memory=(11 * pods + 255) * MIB,
                ephemeral_storage=GIB,
            )
        overhead = kube_reserved + kubelet.system_reserved + _eviction(kubelet, capacity)
        allocatable = (capacity - overhead).clamp()
        od_price = self.prices[name]
        factor = SPOT_FACTOR.get(category, 0.40)
        offered = set(spec["zones"])
        offerings = []
        for index, zone in enumerate(self.zones):
            in_zone = zone in offered
            offerings.append(
                Offering(
                    zone,
                    lbl.CAPACITY_TYPE_ON_DEMAND,
                    od_price,
                    in_zone and (name, zone, lbl.CAPACITY_TYPE_ON_DEMAND) not in unavailable,
                )
            )
            offerings.append(
                Offering(
                    zone,
                    lbl.CAPACITY_TYPE_SPOT,
                    round(od_price * factor * (1 + _ZONE_STEP * index), 6),
                    in_zone
                    and bool(spec["spot"])
                    and (name, zone, lbl.CAPACITY_TYPE_SPOT) not in unavailable,
                )
            )
        label_values = {
            lbl.INSTANCE_TYPE: name,
            lbl.ARCH: arch,
            lbl.OS: "linux",
            lbl.REGION: self.region,
            lbl.AWS_INSTANCE_FAMILY: family,
            lbl.AWS_INSTANCE_CATEGORY: category,
            lbl.AWS_INSTANCE_SIZE: size,
            lbl.AWS_INSTANCE_CPU: str(vcpu),
            lbl.AWS_INSTANCE_MEMORY: str(spec["memoryMiB"]),
            lbl.AWS_INSTANCE_HYPERVISOR: spec.get("hypervisor", ""),
        }
        if generation:
            label_values[lbl.AWS_INSTANCE_GENERATION] = generation
        if gpus:
            label_values[lbl.AWS_INSTANCE_GPU_COUNT] = str(gpus)
            label_values[lbl.AWS_INSTANCE_GPU_NAME] = spec.get("gpuName", "")
            label_values[lbl.AWS_INSTANCE_GPU_MANUFACTURER] = spec.get("gpuManufacturer", "")
            label_values[lbl.AWS_INSTANCE_GPU_MEMORY] = str(spec.get("gpuMemoryMiB", 0))
        reqs = [Requirement.any_of(k, (v,)) for k, v in label_values.items()]
        reqs.append(Requirement.any_of(lbl.ZONE, sorted(offered)))
        reqs.append(
            Requirement.any_of(
                lbl.CAPACITY_TYPE,
                [lbl.CAPACITY_TYPE_ON_DEMAND, *([lbl.CAPACITY_TYPE_SPOT] if spec["spot"] else [])],
            )
        )
        return InstanceType(
            name=name,
            requirements=Requirements(reqs),
            capacity=capacity,
            overhead=overhead,
            allocatable=allocatable,
            offerings=tuple(offerings),
        )
