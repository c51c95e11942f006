"""README's "Deploy to a cluster", run against the real control plane.

The steps are read from README.md between the `deploy-steps` markers and run in order, exactly
as written (kubectl and updraft from PATH, the cluster from $KUBECONFIG). Only what this
machine cannot do is stood in for, between steps: there is no kubelet pulling the image, so
after the overlay is applied the Deployment's place is taken by the same `updraft serve`, run
out of cluster with the Deployment's own arguments, the `updraft` ServiceAccount's token and
the serving pair `updraft certs` wrote into the Secret; and since there is no pod network, the
Service becomes an ExternalName for localhost on that process's port (as in
test_metrics_api.py). Then the APIService becomes Available, the metric is read through
kube-apiserver, and the HPA reports it in status.currentMetrics.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shlex
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from kubernetes_asyncio import client

from tests.cluster.controlplane import REPO, ControlPlane, binary_dir
from tests.e2e.test_metrics_api import (
    APISERVICES,
    SYSTEM,
    get_raw,
    https_ok,
    kubectl,
    service_account_kubeconfig,
)
from tests.e2e.waiting import eventually
from tests.servers.process import ServerProcess
from tests.servers.updraft import UPDRAFT

README = REPO / "README.md"
MOUNT = "/var/run/serving-cert"
"""Where manifests/base/deployment.yaml mounts the serving Secret."""
HPA = "web-business-hours"
ROUTED = tuple(name for name, *_ in APISERVICES)
"""The APIServices the standalone overlay routes to the Service `updraft`."""


def readme_steps(marker: str = "deploy-steps") -> list[str]:
    """The command lines of README's `marker` block (comments and blank lines dropped)."""
    text = README.read_text()
    block = re.search(rf"<!-- {marker}[^>]*-->\n```sh\n(.*?)```\n<!-- /{marker} -->", text, re.S)
    assert block is not None, f"README.md has no {marker} block"
    return [
        line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")
    ]


def deployment_args(
    directory: Path,
    port: int,
    *,
    container: dict[str, Any] | None = None,
    grpc_port: int = 0,
    mounts: Mapping[str, Path] | None = None,
) -> list[str]:
    """The adapter container's own arguments (manifests/base/deployment.yaml's, or
    `container`'s), with its mounts (the serving Secret's at `directory`, `mounts`' others)
    and ports moved to this machine."""
    if container is None:
        doc = yaml.safe_load((REPO / "manifests/base/deployment.yaml").read_text())
        (container,) = doc["spec"]["template"]["spec"]["containers"]
    moved = {"--secure-port": str(port), "--grpc-port": str(grpc_port), "--metrics-port": "0"}
    places = {MOUNT: directory, **(mounts or {})}
    args: list[str] = []
    for arg in container["args"]:
        flag, sep, value = arg.partition("=")
        if sep and flag in moved:
            value = moved[flag]
        for mount, local in places.items():
            value = value.replace(mount, str(local))
        args.append(f"{flag}{sep}{value}")
    return args


@dataclass
class Steps:
    """Runs README lines with the user's PATH and KUBECONFIG; `after` hooks stand in for
    what a real cluster would do between two of them."""

    cp: ControlPlane
    after: dict[str, Callable[[], None]] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        path = os.pathsep.join([str(binary_dir()), str(Path(UPDRAFT).parent), os.environ["PATH"]])
        return {**os.environ, "PATH": path, "KUBECONFIG": str(self.cp.kubeconfig)}

    def run(self, line: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            shlex.split(line), cwd=REPO, env=self.env(), capture_output=True, text=True, timeout=180
        )

    def must(self, line: str) -> str:
        done = self.run(line)
        assert done.returncode == 0, f"README step `{line}` failed:\n{done.stdout}{done.stderr}"
        self.outputs[line] = done.stdout
        return done.stdout


class StandIn:
    """The adapter pod, played by a local `updraft serve` (see the module docstring)."""

    def __init__(
        self,
        cp: ControlPlane,
        work: Path,
        *,
        container: dict[str, Any] | None = None,
        grpc: bool = False,
        mounts: Mapping[str, Path] | None = None,
        apiservices: Sequence[str] = ROUTED,
    ) -> None:
        """`container`: the Deployment's (the base's by default); `grpc`: serve the gRPC door
        too, on `grpc_port`; `apiservices`: the ones the overlay routes to this Service."""
        self.cp = cp
        self.work = work
        self.mount = work / "serving-cert"
        self.kubeconfig = work / "kubeconfig"
        self.apiservices = apiservices
        self.server = ServerProcess(
            name="updraft",
            binary=UPDRAFT,
            directory=work,
            ports=2 if grpc else 1,
            args=lambda ports, _: [
                *deployment_args(
                    self.mount,
                    ports[0],
                    container=container,
                    grpc_port=ports[1] if grpc else 0,
                    mounts=mounts,
                ),
                f"--kubeconfig={self.kubeconfig}",
                "--bind-address=127.0.0.1",
                *(["--grpc-host=127.0.0.1"] if grpc else []),
            ],
        )

    @property
    def grpc_port(self) -> int:
        return self.server.ports[1]

    def replace_the_pod_network(self) -> None:
        """No kubelet, no kube-proxy: the Deployment goes, the Service points at localhost."""
        kubectl(self.cp, "-n", SYSTEM, "delete", "deployment/updraft", "service/updraft")
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "updraft", "namespace": SYSTEM},
            "spec": {
                "type": "ExternalName",
                "externalName": "localhost",
                "ports": [{"name": "https", "port": self.server.port}],
            },
        }
        path = self.work / "service.json"
        path.write_text(orjson.dumps(service).decode())
        kubectl(self.cp, "create", "-f", str(path))
        port = orjson.dumps({"spec": {"service": {"port": self.server.port}}}).decode()
        for name in self.apiservices:
            kubectl(self.cp, "patch", f"apiservice/{name}", "--type=merge", "-p", port)

    def start_from_the_secret(self) -> None:
        """Mount the Secret `updraft certs` wrote, as the kubelet would, and start serving."""
        secret = orjson.loads(
            kubectl(self.cp, "-n", SYSTEM, "get", "secret/updraft-serving-cert", "-o", "json")
        )
        assert secret["type"] == "kubernetes.io/tls"
        self.mount.mkdir(exist_ok=True)
        for key in ("ca.crt", "tls.crt", "tls.key"):
            (self.mount / key).write_bytes(base64.b64decode(secret["data"][key]))
        service_account_kubeconfig(self.cp, self.kubeconfig)
        self.server.start()
        self.server.wait_ready(
            lambda: https_ok(f"https://localhost:{self.server.port}/readyz", self.mount / "ca.crt")
        )


def cleanup(cp: ControlPlane) -> None:
    # The APIServices go first: one whose backend is gone breaks discovery cluster-wide.
    for what in (
        [f"apiservice/{name}" for name, *_ in APISERVICES],
        ["-n", "default", f"hpa/{HPA}", "deployment/web", "metricsource/business-hours"],
        ["-n", SYSTEM, "service/updraft", "secret/updraft-serving-cert", "deployment/updraft"],
    ):
        subprocess.run(
            [
                str(binary_dir() / "kubectl"),
                f"--kubeconfig={cp.kubeconfig}",
                "delete",
                "--ignore-not-found",
                "--wait=false",
                *what,
            ],
            capture_output=True,
            timeout=60,
        )


@dataclass
class Deployed:
    steps: Steps
    stand_in: StandIn
    lines: list[str]


@pytest.fixture(scope="module")
def deployed(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    lines = readme_steps()
    stand_in = StandIn(control_plane, tmp_path_factory.mktemp("deploy"))
    steps = Steps(control_plane)
    steps.after = {
        "kubectl apply --server-side -k manifests/overlays/standalone": (
            stand_in.replace_the_pod_network
        ),
        "updraft certs ": stand_in.start_from_the_secret,
    }
    try:
        for line in lines:
            if line.startswith("kubectl get --raw"):
                continue  # read once the metric is served: test_metric_through_kube_apiserver
            steps.must(line)
            for prefix, hook in steps.after.items():
                if line.startswith(prefix):
                    hook()
        yield Deployed(steps, stand_in, lines)
    finally:
        cleanup(control_plane)
        stand_in.server.stop()


def test_every_readme_step_ran(deployed: Deployed) -> None:
    assert any(line.startswith("updraft certs ") for line in deployed.lines)
    assert any(" -k manifests/overlays/" in line for line in deployed.lines)
    apiservice = next(v for k, v in deployed.steps.outputs.items() if "get apiservice" in k)
    assert re.search(r"updraft-system/updraft\s+True", apiservice), apiservice


async def test_metric_through_kube_apiserver(deployed: Deployed) -> None:
    (line,) = [line for line in deployed.lines if line.startswith("kubectl get --raw")]

    async def served() -> dict[str, Any] | None:
        done = await asyncio.to_thread(deployed.steps.run, line)
        return orjson.loads(done.stdout) if done.returncode == 0 else None

    doc = await eventually(served, within=60, what=f"`{line}` to succeed")
    assert doc["kind"] == "ExternalMetricValueList"
    assert [i["metricName"] for i in doc["items"]] == ["business-hours"]
    assert doc["items"][0]["value"] in ("0", "5")


async def test_hpa_reads_the_metric(deployed: Deployed, kube: client.ApiClient) -> None:
    hpas = client.AutoscalingV2Api(kube)

    async def current() -> list[Any] | None:
        hpa = await hpas.read_namespaced_horizontal_pod_autoscaler(HPA, "default")
        return hpa.status.current_metrics or None

    metrics = await eventually(current, within=90, what="the HPA's status.currentMetrics")
    assert metrics[0].type == "External"
    assert metrics[0].external.metric.name == "business-hours"
    assert metrics[0].external.current.average_value in ("0", "5")
    shown = await asyncio.to_thread(deployed.steps.must, f"kubectl get hpa {HPA}")
    assert re.search(r"[05]/1", shown), shown


def secret_cert(cp: ControlPlane) -> str:
    return kubectl(
        cp, "-n", SYSTEM, "get", "secret/updraft-serving-cert", "-o", "jsonpath={.data.tls\\.crt}"
    )


def test_certs_again_keeps_the_pair_and_the_caBundle(deployed: Deployed) -> None:  # noqa: N802
    (line,) = [line for line in deployed.lines if line.startswith("updraft certs ")]
    before = secret_cert(deployed.steps.cp)
    out = deployed.steps.must(line)
    assert "kept (valid)" in out
    assert secret_cert(deployed.steps.cp) == before
    ca = base64.b64encode((deployed.stand_in.mount / "ca.crt").read_bytes()).decode()
    for name, *_ in APISERVICES:
        bundle = kubectl(
            deployed.steps.cp, "get", f"apiservice/{name}", "-o", "jsonpath={.spec.caBundle}"
        )
        assert bundle == ca, name


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("--apiservice v1beta1.nothing.example.com", "--apiservice: APIService v1beta1.nothing"),
        ("--apiservice v1.apps", "--apiservice: APIService v1.apps routes to no Service"),
    ],
)
def test_certs_bad_input_exits_2_and_changes_nothing(
    deployed: Deployed, extra: str, message: str
) -> None:
    before = secret_cert(deployed.steps.cp)
    done = deployed.steps.run(
        f"updraft certs --namespace updraft-system --service updraft --rotate {extra}"
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"updraft certs: {message}"), done.stderr
    assert secret_cert(deployed.steps.cp) == before


def remount(stand_in: StandIn) -> None:
    """What the kubelet does when the Secret changes: the mounted files follow it."""
    secret = orjson.loads(
        kubectl(stand_in.cp, "-n", SYSTEM, "get", "secret/updraft-serving-cert", "-o", "json")
    )
    for key in ("ca.crt", "tls.crt", "tls.key"):
        (stand_in.mount / key).write_bytes(base64.b64decode(secret["data"][key]))


async def test_rotate_issues_a_new_pair_and_the_metric_stays_served(deployed: Deployed) -> None:
    (line,) = [line for line in deployed.lines if line.startswith("updraft certs ")]
    (raw,) = [line for line in deployed.lines if line.startswith("kubectl get --raw")]
    before = secret_cert(deployed.steps.cp)
    out = await asyncio.to_thread(deployed.steps.must, f"{line} --rotate")
    assert ": rotated" in out
    assert secret_cert(deployed.steps.cp) != before
    await asyncio.to_thread(remount, deployed.stand_in)
    ca = base64.b64encode((deployed.stand_in.mount / "ca.crt").read_bytes()).decode()
    for name, *_ in APISERVICES:
        bundle = kubectl(
            deployed.steps.cp, "get", f"apiservice/{name}", "-o", "jsonpath={.spec.caBundle}"
        )
        assert bundle == ca, name

    async def served_with_the_new_pair() -> bool | None:
        done = await asyncio.to_thread(deployed.steps.run, raw)
        return True if done.returncode == 0 else None

    # The adapter re-reads its files (10 s poll) and the aggregator its caBundle.
    await eventually(served_with_the_new_pair, within=90, what=f"`{raw}` after --rotate")


async def test_available_apiservice_through_get_raw(
    deployed: Deployed, kube: client.ApiClient
) -> None:
    status, doc = await get_raw(kube, "/apis/external.metrics.k8s.io/v1beta1")
    assert status == 200
    assert doc["kind"] == "APIResourceList"


def test_cert_manager_overlay_cross_references() -> None:
    """cert-manager cannot run here, so its overlay is rendered and its references followed:
    selfSigned Issuer -> CA Certificate -> CA Issuer -> serving Certificate, written into the
    Secret the Deployment mounts, for the Service's DNS name, injected into every APIService."""
    done = subprocess.run(
        [str(binary_dir() / "kubectl"), "kustomize", str(REPO / "manifests/overlays/cert-manager")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    issuers = {i["metadata"]["name"]: i for i in by_kind["Issuer"]}
    certificates = {c["metadata"]["name"]: c for c in by_kind["Certificate"]}
    (deployment,) = by_kind["Deployment"]
    (service,) = by_kind["Service"]
    namespace = deployment["metadata"]["namespace"]
    mounted = {
        v["secret"]["secretName"]
        for v in deployment["spec"]["template"]["spec"]["volumes"]
        if "secret" in v
    }
    serving = [c for c in certificates.values() if c["spec"]["secretName"] in mounted]
    assert len(serving) == 1
    cert = serving[0]
    assert cert["metadata"]["namespace"] == namespace
    assert (
        f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
        in (cert["spec"]["dnsNames"])
    )
    assert not cert["spec"].get("isCA")
    ca_issuer = issuers[cert["spec"]["issuerRef"]["name"]]
    ca_cert = next(
        c
        for c in certificates.values()
        if c["spec"]["secretName"] == ca_issuer["spec"]["ca"]["secretName"]
    )
    assert ca_cert["spec"]["isCA"] is True
    assert "selfSigned" in issuers[ca_cert["spec"]["issuerRef"]["name"]]["spec"]
    apiservices = by_kind["APIService"]
    assert {a["metadata"]["name"] for a in apiservices} == {name for name, *_ in APISERVICES}
    for a in apiservices:
        assert a["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
            f"{namespace}/{cert['metadata']['name']}"
        )
        assert a["spec"]["service"] == {
            "name": service["metadata"]["name"],
            "namespace": namespace,
            "port": 443,
        }
