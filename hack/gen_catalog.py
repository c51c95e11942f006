"""Generate provisioner/data/aws-instance-types.json from moto's EC2 instance-type facts.

The runtime must not depend on moto, so this script copies the handful of facts the provisioner
needs (vCPU, memory, architecture, GPUs, ENI limits, zones offered in us-east-1) into a compact
JSON file inside the package, and copies the on-demand price snapshot next to it.

Run from the repository root: ``.venv/bin/python hack/gen_catalog.py``. The output is
deterministic (sorted keys and rows), so re-running it on the same moto version is a no-op.
"""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path
from typing import Any

REGION = "us-east-1"
ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "provisioner" / "data"
PRICES_IN = ROOT.parent / "shared" / "data" / "aws-ondemand-prices-us-east-1.json"
"""The price snapshot in the project's shared/ folder, which sits beside the clone."""

# moto names architectures the EC2 way; Kubernetes nodes carry kubernetes.io/arch.
_ARCH = {"x86_64": "amd64", "arm64": "arm64"}


def _load_gz(path: Any) -> Any:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def _row(spec: dict[str, Any], zones: list[str]) -> dict[str, Any] | None:
    archs = [_ARCH[a] for a in spec["ProcessorInfo"]["SupportedArchitectures"] if a in _ARCH]
    if not archs:
        return None  # mac1/mac2 hosts: not usable as Kubernetes nodes
    network = spec["NetworkInfo"]
    default_card = network.get("DefaultNetworkCardIndex", 0)
    enis = network["MaximumNetworkInterfaces"]
    for card in network.get("NetworkCards", []):
        if card.get("NetworkCardIndex") == default_card:
            enis = card["MaximumNetworkInterfaces"]
    gpus = spec.get("GpuInfo", {}).get("Gpus", [])
    row: dict[str, Any] = {
        "name": spec["InstanceType"],
        "vcpu": spec["VCpuInfo"]["DefaultVCpus"],
        "memoryMiB": spec["MemoryInfo"]["SizeInMiB"],
        "arch": archs[0],
        "enis": enis,
        "ipv4PerEni": network["Ipv4AddressesPerInterface"],
        "hypervisor": spec.get("Hypervisor", ""),
        "bareMetal": bool(spec.get("BareMetal", False)),
        "spot": "spot" in spec.get("SupportedUsageClasses", []),
        "zones": zones,
    }
    if gpus:
        row["gpuCount"] = sum(g["Count"] for g in gpus)
        row["gpuName"] = gpus[0]["Name"].lower()
        row["gpuManufacturer"] = gpus[0]["Manufacturer"].lower()
        row["gpuMemoryMiB"] = gpus[0]["MemoryInfo"]["SizeInMiB"]
    return row


def main() -> None:
    moto_res = resources.files("moto.ec2") / "resources"
    specs: dict[str, Any] = _load_gz(moto_res / "instance_types.json.gz")
    offerings = _load_gz(
        moto_res / "instance_type_offerings" / "availability-zone" / f"{REGION}.json.gz"
    )
    zones_of: dict[str, set[str]] = {}
    for offering in offerings:
        zones_of.setdefault(offering["InstanceType"], set()).add(offering["Location"])
    prices = json.loads(PRICES_IN.read_text())
    rows = []
    for name in sorted(specs):
        if name not in prices["prices"] or name not in zones_of:
            continue  # no price or not offered in the region: the provisioner could not launch it
        row = _row(specs[name], sorted(zones_of[name]))
        if row is not None:
            rows.append(row)
    catalog = {
        "source": "moto EC2 instance types and us-east-1 offerings, by hack/gen_catalog.py",
        "region": REGION,
        "instanceTypes": rows,
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "aws-instance-types.json").write_text(
        json.dumps(catalog, separators=(",", ":"), sort_keys=True) + "\n"
    )
    price_out = {k: prices[k] for k in ("source", "region", "currency", "unit")}
    price_out["prices"] = dict(sorted(prices["prices"].items()))
    (OUT_DIR / f"aws-ondemand-prices-{REGION}.json").write_text(
        json.dumps(price_out, indent=0, sort_keys=True) + "\n"
    )
    print(f"wrote {len(rows)} instance types")


if __name__ == "__main__":
    main()
