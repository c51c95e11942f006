"""Every manifest we ship is accepted by a real kube-apiserver: the kustomize overlays and the
examples, by server-side apply with dry-run (the CRDs for real, so custom objects validate)."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
import yaml

from keda import spec_from_metadata
from scalers import default_registry
from tests.cluster.controlplane import REPO, ControlPlane, binary_dir
from tests.e2e.keda.conftest import established, keda_dir

MANIFESTS = REPO / "manifests"
NEEDS_KEDA = {"keda-scaledobject.yaml"}
"""Examples of KEDA's own kinds: applied against KEDA v2.21.0's own CRDs (from the build
`hack/keda/build.sh` makes, which `make setup` runs), and their Updraft part is checked too."""


def keda_crds() -> Path:
    crds = keda_dir() / "crds"
    if not crds.is_dir():
        pytest.fail(f"KEDA's CRDs are missing from {crds}: run make setup", pytrace=False)
    return crds


def kubectl(cp: ControlPlane, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(binary_dir() / "kubectl"), f"--kubeconfig={cp.kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"kubectl {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


async def run(cp: ControlPlane, *args: str, stdin: str | None = None) -> str:
    return await asyncio.to_thread(kubectl, cp, *args, stdin=stdin)


@pytest.fixture(scope="module")
def crds_installed(control_plane: ControlPlane) -> ControlPlane:
    """The CRDs and our namespace for real (a dry run creates neither, so objects that live in
    them could not validate); everything else only as a dry run."""
    kubectl(control_plane, "apply", "--server-side", "-k", str(MANIFESTS / "crds"))
    kubectl(control_plane, "apply", "--server-side", "-f", str(MANIFESTS / "base/namespace.yaml"))
    kubectl(control_plane, "apply", "--server-side", "-f", str(keda_crds()))
    established(
        control_plane,
        "crd/metricsources.updraft.io",
        "crd/scaledobjects.keda.sh",
        "crd/triggerauthentications.keda.sh",
    )
    return control_plane


@pytest.mark.parametrize(
    ("directory", "kinds"),
    [
        (
            "overlays/standalone",
            {"Deployment", "Service", "APIService", "CustomResourceDefinition"},
        ),
        ("overlays/with-keda", {"Deployment", "Service", "APIService", "CustomResourceDefinition"}),
        ("provisioner", {"Deployment", "ServiceAccount", "ClusterRole", "Role"}),
    ],
)
async def test_kustomization_applies(
    crds_installed: ControlPlane, directory: str, kinds: set[str]
) -> None:
    rendered = await run(crds_installed, "kustomize", str(MANIFESTS / directory))
    assert kinds <= {doc["kind"] for doc in yaml.safe_load_all(rendered) if doc}
    await run(
        crds_installed, "apply", "--server-side", "--dry-run=server", "-f", "-", stdin=rendered
    )


@pytest.mark.parametrize(
    "example",
    sorted(p.name for p in (MANIFESTS / "examples").glob("*.yaml") if p.name not in NEEDS_KEDA),
)
async def test_example_applies(crds_installed: ControlPlane, example: str) -> None:
    await run(
        crds_installed,
        "apply",
        "--server-side",
        "--dry-run=server",
        "-f",
        str(MANIFESTS / "examples" / example),
    )


@pytest.mark.parametrize("example", sorted(NEEDS_KEDA))
async def test_keda_example_applies(crds_installed: ControlPlane, example: str) -> None:
    """As a user applies it (not a dry run): every object is created."""
    out = await run(crds_installed, "apply", "-f", str(MANIFESTS / "examples" / example))
    docs = [d for d in yaml.safe_load_all((MANIFESTS / "examples" / example).read_text()) if d]
    for doc in docs:
        assert f"{doc['kind'].lower()}.keda.sh/{doc['metadata']['name']} created" in out
    await run(crds_installed, "delete", "-f", str(MANIFESTS / "examples" / example))


def test_keda_example_is_a_valid_updraft_trigger() -> None:
    registry = default_registry()
    for name in NEEDS_KEDA:
        docs = yaml.safe_load_all((MANIFESTS / "examples" / name).read_text())
        [doc] = [d for d in docs if d and d["kind"] == "ScaledObject"]
        for trigger in doc["spec"]["triggers"]:
            assert trigger["type"] in ("external", "external-push")
            spec = spec_from_metadata(trigger["metadata"], known_types=registry.types())
            registry.validate(spec)
