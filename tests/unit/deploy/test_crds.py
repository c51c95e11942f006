"""`kubectl explain` has something to say about every field of our CRDs, and every printer
column reads a field the schema declares."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

CRDS = sorted(
    (Path(__file__).resolve().parents[3] / "manifests" / "crds").glob("*.updraft.io.yaml")
)


def properties(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property under `schema` (through items and additionalProperties), with its path."""
    for name, sub in (schema.get("properties") or {}).items():
        yield f"{path}.{name}", sub
        yield from properties(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from properties(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from properties(schema["additionalProperties"], f"{path}{{}}")


def versions() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in CRDS:
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            out.append((f"{crd['spec']['names']['kind']}/{version['name']}", version))
    return out


VERSIONS = versions()


def test_all_four_crds_are_checked() -> None:
    assert {name.split("/")[0] for name, _ in VERSIONS} == {
        "MetricSource",
        "NodeClaim",
        "NodeClass",
        "NodePool",
    }


@pytest.mark.parametrize(("name", "version"), VERSIONS, ids=[n for n, _ in VERSIONS])
def test_every_property_has_a_description(name: str, version: dict[str, Any]) -> None:
    schema = version["schema"]["openAPIV3Schema"]
    kind = name.split("/")[0]
    # The apiserver forbids anything but name/generateName constraints on the root metadata
    # (kubectl explain shows ObjectMeta's own description there).
    root_metadata = f"{kind}.metadata"
    missing = [
        path
        for path, sub in properties(schema, kind)
        if path != root_metadata and not str(sub.get("description", "")).strip()
    ]
    assert "description" not in schema["properties"]["metadata"]
    assert not missing, f"no description: {missing}"


def lookup(schema: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    """The schema a printer column's simple JSONPath (.a.b, filters dropped) reads."""
    simple = re.sub(r"\[\?\(.*?\)\]", "[]", json_path)
    if simple.startswith(".metadata."):
        return {}  # ObjectMeta: the apiserver's, whatever the CRD declares of it
    node: dict[str, Any] | None = schema
    for part in re.findall(r"(?:\\\.|[^.])+", simple.lstrip(".")):
        if node is None:
            return None
        key = part.replace("\\.", ".")
        items = key.endswith("[]")
        key = key.removesuffix("[]")
        props = node.get("properties") or {}
        if key in props:
            node = props[key]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return None
        if items and node is not None:
            node = node.get("items")
    return node


@pytest.mark.parametrize(("name", "version"), VERSIONS, ids=[n for n, _ in VERSIONS])
def test_printer_columns_read_declared_fields(name: str, version: dict[str, Any]) -> None:
    schema = version["schema"]["openAPIV3Schema"]
    for column in version.get("additionalPrinterColumns") or []:
        assert lookup(schema, column["jsonPath"]) is not None, column


def columns(kind: str) -> dict[str, str]:
    (version,) = [v for n, v in VERSIONS if n.startswith(f"{kind}/")]
    return {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}


def test_nodepool_and_nodeclaim_columns_show_size_and_price() -> None:
    pool = columns("NodePool")
    assert pool["Nodes"] == ".status.nodes"
    assert pool["CPU"] == ".status.resources.cpu"
    assert pool["Memory"] == ".status.resources.memory"
    assert pool["$/h"] == ".status.pricePerHour"
    assert columns("NodeClaim")["$/h"] == ".status.price"
