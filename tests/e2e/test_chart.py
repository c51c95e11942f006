"""The Helm chart (charts/updraft) against the kustomize manifests and the real control plane.

`helm lint` is clean and `helm template` renders for the defaults and every switch; for each
setting that has an overlay, the chart's render and the overlay's, both applied to the real
kube-apiserver (server-side dry run, so defaults are filled in the same way), are the same
objects, less the labels Helm's conventions add; and `helm upgrade` to the next chart version
keeps the serving pair an install generated, with the APIServices' caBundle.

helm is the one `hack/helm/build.sh` builds from the Go module proxy (`make setup` runs it).
"""

from __future__ import annotations

import base64
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from cryptography import x509

from tests.cluster.controlplane import REPO, ControlPlane, binary_dir
from tests.e2e.test_deploy import readme_steps
from tests.e2e.test_manifests import (
    MANIFESTS,
    crds_installed,  # noqa: F401 - a fixture
    kubectl,
)

CHART = REPO / "charts" / "updraft"
CERT_MANAGER_CRDS = Path(__file__).with_name("cert-manager-crds.yaml")
HELM_LABELS = frozenset(
    {
        "app.kubernetes.io/instance",
        "app.kubernetes.io/managed-by",
        "app.kubernetes.io/version",
        "helm.sh/chart",
    }
)
"""What Helm's conventions add to every object the chart renders; the overlays have none."""
SERVER_FIELDS = ("managedFields", "uid", "resourceVersion", "creationTimestamp", "generation")
INJECT = "cert-manager.io/inject-ca-from"


def helm_binary() -> Path:
    out = subprocess.run(
        ["bash", str(REPO / "hack/helm/build.sh"), "--print-dir"],
        check=True,
        capture_output=True,
        text=True,
    )
    path = Path(out.stdout.strip()) / "helm"
    assert path.is_file(), f"{path} missing: run `make setup` (it builds helm)"
    return path


def helm(*args: str, cp: ControlPlane | None = None) -> str:
    where = [f"--kubeconfig={cp.kubeconfig}"] if cp is not None else []
    done = subprocess.run(
        [str(helm_binary()), *where, *args], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, f"helm {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def render(*sets: str, namespace: str = "updraft-system", extra: tuple[str, ...] = ()) -> str:
    flags = [f"--set={s}" for s in sets]
    return helm(
        "template", "updraft", str(CHART), "-n", namespace, "--include-crds", *flags, *extra
    )


def docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def kinds(text: str) -> list[str]:
    return sorted(d["kind"] for d in docs(text))


SWITCHES = [
    (),
    ("adapter.enabled=false",),
    ("provisioner.enabled=false",),
    ("keda.enabled=true",),
    ("certificates.mode=generate",),
    ("certificates.mode=certManager",),
    ("certificates.mode=external",),
    ("adapter.pdb.enabled=false",),
    ("podMonitor.enabled=true",),
    ("prometheusRule.enabled=true",),
    ("grafana.dashboards.enabled=true",),
    ("provisioner.cloudProvider=aws",),
]


@pytest.mark.parametrize("sets", SWITCHES, ids=lambda s: ",".join(s) or "defaults")
def test_lint_is_clean_and_the_chart_renders(sets: tuple[str, ...]) -> None:
    flags = [f"--set={s}" for s in sets]
    out = helm("lint", "--strict", str(CHART), *flags)
    assert "0 chart(s) failed" in out
    assert "[WARNING]" not in out, out
    assert "[ERROR]" not in out, out
    assert docs(render(*sets))


def test_each_switch_changes_what_renders() -> None:
    defaults = kinds(render())
    assert "Secret" in defaults  # auto without cert-manager: a generated pair
    assert defaults.count("APIService") == 3
    assert "APIService" not in kinds(render("adapter.enabled=false"))
    assert kinds(render("provisioner.enabled=false")).count("Deployment") == 1
    assert kinds(render("keda.enabled=true")).count("APIService") == 2
    assert "Certificate" in kinds(render(extra=("--api-versions=cert-manager.io/v1",)))
    assert "Secret" not in kinds(render("certificates.mode=external"))
    assert "PodDisruptionBudget" not in kinds(render("adapter.pdb.enabled=false"))
    assert kinds(render("podMonitor.enabled=true")).count("PodMonitor") == 2
    assert "PrometheusRule" in kinds(render("prometheusRule.enabled=true"))
    assert "ConfigMap" in kinds(render("grafana.dashboards.enabled=true"))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("certificates.mode=bogus", 'certificates.mode: "bogus" is not one of auto, generate'),
        ("provisioner.cloudProvider=gce", 'provisioner.cloudProvider: "gce" is not one of kwok'),
    ],
)
def test_a_bad_value_fails_naming_it(value: str, message: str) -> None:
    done = subprocess.run(
        [str(helm_binary()), "template", "updraft", str(CHART), f"--set={value}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert message in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("copy", "source"),
    [("crds", "manifests/crds"), ("grafana", "manifests/grafana")],
)
def test_the_chart_ships_the_same_files_as_manifests(copy: str, source: str) -> None:
    """Helm reads files only from inside the chart, so it carries copies: byte for byte."""
    shipped = {p.name: p.read_bytes() for p in (CHART / copy).iterdir()}
    originals = {
        p.name: p.read_bytes()
        for p in (REPO / source).iterdir()
        if p.name in shipped or p.suffix == ".json" or p.name.endswith(".updraft.io.yaml")
    }
    assert shipped == originals


def normalized(cp: ControlPlane, rendered: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The objects kube-apiserver would store for `rendered` (server-side dry run), by kind,
    namespace and name, without what the server adds per write and Helm's labels."""
    out = kubectl(
        cp, "apply", "--server-side", "--dry-run=server", "-o", "json", "-f", "-", stdin=rendered
    )
    doc = orjson.loads(out)
    items = doc["items"] if doc.get("kind") == "List" else [doc]
    objects = {}
    for item in items:
        meta = item["metadata"]
        for key in SERVER_FIELDS:
            meta.pop(key, None)
        labels = {k: v for k, v in meta.pop("labels", {}).items() if k not in HELM_LABELS}
        if labels:
            meta["labels"] = labels
        item.pop("status", None)
        objects[(item["kind"], meta.get("namespace", ""), meta["name"])] = item
    return objects


def kustomized(cp: ControlPlane, *directories: str) -> str:
    """The overlays' render, less the Namespace (`helm install --create-namespace` makes it)."""
    texts = [kubectl(cp, "kustomize", str(MANIFESTS / d)) for d in directories]
    kept = [d for t in texts for d in docs(t) if d["kind"] != "Namespace"]
    return yaml.safe_dump_all(kept)


@pytest.fixture(scope="module")
def plane(crds_installed: ControlPlane) -> ControlPlane:  # noqa: F811 - the imported fixture
    kubectl(crds_installed, "apply", "--server-side", "-f", str(CERT_MANAGER_CRDS))
    kubectl(
        crds_installed,
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/issuers.cert-manager.io",
        "crd/certificates.cert-manager.io",
    )
    return crds_installed


@pytest.mark.parametrize(
    ("directories", "sets"),
    [
        (("overlays/standalone",), ("provisioner.enabled=false", "certificates.mode=external")),
        (
            ("overlays/with-keda",),
            ("keda.enabled=true", "provisioner.enabled=false", "certificates.mode=external"),
        ),
        (
            ("overlays/cert-manager",),
            ("provisioner.enabled=false", "certificates.mode=certManager"),
        ),
        (("provisioner",), ("adapter.enabled=false",)),
        (("overlays/standalone", "provisioner"), ("certificates.mode=external",)),
    ],
    ids=["standalone", "with-keda", "cert-manager", "provisioner", "both"],
)
def test_the_chart_renders_what_the_overlay_renders(
    plane: ControlPlane, directories: tuple[str, ...], sets: tuple[str, ...]
) -> None:
    ours = normalized(plane, render(*sets))
    theirs = normalized(plane, kustomized(plane, *directories))
    assert sorted(ours) == sorted(theirs)
    for key, obj in theirs.items():
        assert ours[key] == obj, key


def test_the_default_render_is_the_overlay_with_a_generated_pair(plane: ControlPlane) -> None:
    """The defaults (no cert-manager here) add only the generated Secret and the caBundle it
    trusts, in place of the annotation that asks cert-manager for one."""
    ours = normalized(plane, render())
    secret = ours.pop(("Secret", "updraft-system", "updraft-serving-cert"))
    ca = secret["data"]["ca.crt"]
    theirs = normalized(plane, kustomized(plane, "overlays/standalone", "provisioner"))
    for key, obj in theirs.items():
        if key[0] == "APIService":
            assert ours[key]["spec"].pop("caBundle") == ca
            del obj["metadata"]["annotations"][INJECT]
            if not obj["metadata"]["annotations"]:
                del obj["metadata"]["annotations"]
    assert ours == theirs


NAMESPACE = "updraft-system"
SECRET = "updraft-serving-cert"


@dataclass
class Installed:
    """README's helm-steps, run as written from a copy of the repository's chart (whose
    version the upgrade test bumps), with helm and kubectl on PATH and the cluster in
    $KUBECONFIG."""

    cp: ControlPlane
    work: Path
    lines: list[str]

    def must(self, prefix: str) -> str:
        (line,) = [line for line in self.lines if line.startswith(prefix)]
        path = os.pathsep.join([str(helm_binary().parent), str(binary_dir()), os.environ["PATH"]])
        env = {**os.environ, "PATH": path, "KUBECONFIG": str(self.cp.kubeconfig)}
        done = subprocess.run(
            shlex.split(line), cwd=self.work, env=env, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, f"README step `{line}` failed:\n{done.stdout}{done.stderr}"
        return done.stdout


@pytest.fixture(scope="module")
def installed(plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    work = tmp_path_factory.mktemp("helm")
    shutil.copytree(CHART, work / "charts" / "updraft")
    # The README's cluster has no cert-manager, so `auto` generates the pair: take the
    # stand-ins for its CRDs away again.
    kubectl(plane, "delete", "--ignore-not-found", "-f", str(CERT_MANAGER_CRDS))
    steps = Installed(plane, work, readme_steps("helm-steps"))
    assert [line.split()[:2] for line in steps.lines if line.startswith("helm ")] == [
        ["helm", "install"],
        ["helm", "upgrade"],
    ]
    try:
        steps.must("helm install ")
        yield steps
    finally:
        # The APIServices go with the release: one whose backend is gone would break
        # discovery for every later test.
        helm("uninstall", "updraft", "-n", NAMESPACE, "--wait", cp=plane)


def serving(cp: ControlPlane) -> dict[str, str]:
    secret = orjson.loads(kubectl(cp, "-n", NAMESPACE, "get", f"secret/{SECRET}", "-o", "json"))
    data: dict[str, str] = secret["data"]
    return data


def ca_bundles(cp: ControlPlane) -> dict[str, str]:
    out = kubectl(
        cp, "get", "apiservices", "-l", "app.kubernetes.io/instance=updraft", "-o", "json"
    )
    return {a["metadata"]["name"]: a["spec"]["caBundle"] for a in orjson.loads(out)["items"]}


def test_install_generates_a_pair_for_the_service(installed: Installed) -> None:
    shown = installed.must("kubectl -n updraft-system get secret")
    assert SECRET in shown
    assert "kubernetes.io/tls" in shown
    pair = serving(installed.cp)
    cert = x509.load_pem_x509_certificate(base64.b64decode(pair["tls.crt"]))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert f"updraft.{NAMESPACE}.svc" in names.get_values_for_type(x509.DNSName)
    bundles = ca_bundles(installed.cp)
    assert sorted(bundles) == [
        "v1beta1.custom.metrics.k8s.io",
        "v1beta1.external.metrics.k8s.io",
        "v1beta2.custom.metrics.k8s.io",
    ]
    assert set(bundles.values()) == {pair["ca.crt"]}


def test_upgrade_to_the_next_chart_version_keeps_the_serving_pair(installed: Installed) -> None:
    before = serving(installed.cp)
    bundles = ca_bundles(installed.cp)
    chart_yaml = installed.work / "charts" / "updraft" / "Chart.yaml"
    meta = yaml.safe_load(chart_yaml.read_text())
    meta["version"] = "0.1.1"
    chart_yaml.write_text(yaml.safe_dump(meta))
    installed.must("helm upgrade ")
    history = orjson.loads(
        helm("history", "updraft", "-n", NAMESPACE, "-o", "json", cp=installed.cp)
    )
    assert [(r["revision"], r["chart"]) for r in history] == [
        (1, "updraft-0.1.0"),
        (2, "updraft-0.1.1"),
    ]
    assert serving(installed.cp) == before
    assert ca_bundles(installed.cp) == bundles
    labels = orjson.loads(
        kubectl(installed.cp, "-n", NAMESPACE, "get", f"secret/{SECRET}", "-o", "json")
    )["metadata"]["labels"]
    assert labels["helm.sh/chart"] == "updraft-0.1.1"
