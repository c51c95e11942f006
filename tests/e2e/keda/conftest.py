"""KEDA v2.21.0 itself as Updraft's client: its operator and metrics apiserver out of cluster
against the test control plane, and `updraft serve` with its gRPC door on TLS.

The binaries come from `hack/keda/build.sh` (`make setup` builds them); the tier is skipped,
saying so, only when they are absent. KEDA's operator serves its metrics gRPC service with
mutual TLS from `--cert-dir` (ca.crt, tls.crt, tls.key) and its metrics apiserver dials it with
the same files; both use the admin kubeconfig (RBAC is not what this tier tests).

KEDA dials the trigger's `scalerAddress` by name; the test uses `localhost:<port>` (the
Updraft serving certificate covers `localhost` as well as `updraft.updraft-system.svc`), so no
hosts entry is needed on the machine running the tests.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.cluster import pki
from tests.cluster.controlplane import REPO, ControlPlane, binary_dir
from tests.servers.process import ServerProcess, free_port, http_ok

BUILD = REPO / "hack" / "keda" / "build.sh"
KEDA_NAMESPACE = "keda"
SYSTEM = "updraft-system"
EXTERNAL_APISERVICE = "v1beta1.external.metrics.k8s.io"


def keda_dir() -> Path:
    out = subprocess.run(
        ["bash", str(BUILD), "--print-dir"], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip())


def kubectl(cp: ControlPlane, *args: str, check: bool = True) -> str:
    done = subprocess.run(
        [str(binary_dir() / "kubectl"), f"--kubeconfig={cp.kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


def apply(
    cp: ControlPlane,
    work: Path,
    name: str,
    items: list[dict[str, Any]],
    *,
    namespace: str | None = None,
) -> None:
    """`kubectl apply` of `items` (as a List written to `work/name.json`)."""
    path = work / f"{name}.json"
    path.write_text(orjson.dumps({"apiVersion": "v1", "kind": "List", "items": items}).decode())
    where = ["-n", namespace] if namespace is not None else []
    kubectl(cp, *where, "apply", "--server-side", "--force-conflicts", "-f", str(path))


def established(cp: ControlPlane, *crds: str) -> None:
    """`kubectl wait --for=condition=Established`, again while a CRD just created has no
    conditions yet (kubectl then fails at once with an accessor error instead of waiting)."""
    deadline = time.monotonic() + 60
    while True:
        done = subprocess.run(
            [str(binary_dir() / "kubectl"), f"--kubeconfig={cp.kubeconfig}", "wait",
             "--for=condition=Established", "--timeout=60s", *crds],
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
        if done.returncode == 0:
            return
        assert "accessor error" in done.stderr, done.stderr
        assert time.monotonic() < deadline, done.stderr
        time.sleep(0.25)  # polling: the next `kubectl wait` decides


@pytest.fixture(scope="session")
def keda_binaries() -> Path:
    directory = keda_dir()
    missing = [n for n in ("keda-operator", "keda-adapter") if not (directory / n).is_file()]
    if missing or not (directory / "crds").is_dir():
        pytest.skip(
            f"KEDA binaries missing from {directory} ({', '.join(missing) or 'crds'}): run "
            "`make setup` (or bash hack/keda/build.sh) to build KEDA v2.21.0"
        )
    return directory


@dataclass
class Keda:
    operator: ServerProcess
    adapter: ServerProcess
    work: Path

    def log(self) -> str:
        return f"{self.operator.log_tail(60)}\n{self.adapter.log_tail(30)}"


@dataclass
class Updraft:
    server: ServerProcess
    ca: Path

    @property
    def grpc_port(self) -> int:
        return self.server.ports[0]

    @property
    def metrics_port(self) -> int:
        return self.server.ports[1]

    @property
    def secure_port(self) -> int:
        """The metrics API's HTTPS port."""
        return self.server.ports[2]

    @property
    def address(self) -> str:
        return f"localhost:{self.grpc_port}"

    def ca_pem(self) -> str:
        return self.ca.read_text()


@pytest.fixture(scope="session")
def updraft(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Updraft]:
    with running_updraft(control_plane, tmp_path_factory.mktemp("updraft-keda")) as running:
        yield running


@contextlib.contextmanager
def running_updraft(control_plane: ControlPlane, work: Path) -> Iterator[Updraft]:
    """`updraft serve`: the gRPC door on TLS, and the metrics API (for `metricSourceRef`)
    watching MetricSources in the cluster."""
    work.mkdir(parents=True, exist_ok=True)
    kubectl(control_plane, "apply", "--server-side", "-k", str(REPO / "manifests" / "crds"))
    ca = pki.new_ca(work, "updraft-ca")
    serving = pki.issue(
        ca,
        work,
        "serving",
        common_name=f"updraft.{SYSTEM}.svc",
        dns_names=(f"updraft.{SYSTEM}.svc", "localhost"),
        ip_addresses=("127.0.0.1",),
        server=True,
    )
    server = ServerProcess(
        name="updraft",
        binary=str(REPO / ".venv" / "bin" / "updraft"),
        directory=work,
        ports=3,
        args=lambda ports, _: [
            "serve",
            f"--kubeconfig={control_plane.kubeconfig}",
            "--grpc-host=127.0.0.1",
            f"--grpc-port={ports[0]}",
            f"--grpc-tls-cert={serving.cert}",
            f"--grpc-tls-key={serving.key}",
            "--metrics-host=127.0.0.1",
            f"--metrics-port={ports[1]}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports[2]}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
        ],
    )
    server.start()
    try:
        server.wait_ready(lambda: http_ok(f"http://127.0.0.1:{server.ports[1]}/readyz"), timeout=60)
        yield Updraft(server, ca.files.cert)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def keda(
    control_plane: ControlPlane,
    keda_binaries: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Keda]:
    with running_keda(control_plane, keda_binaries, tmp_path_factory.mktemp("keda")) as running:
        yield running


@contextlib.contextmanager
def running_keda(control_plane: ControlPlane, keda_binaries: Path, work: Path) -> Iterator[Keda]:
    """KEDA's operator and metrics apiserver, registered as external.metrics.k8s.io and
    Available (for the tests and bench/, which has no fixtures)."""
    work.mkdir(parents=True, exist_ok=True)
    kubectl(control_plane, "apply", "--server-side", "-f", str(keda_binaries / "crds"))
    kubectl(control_plane, "create", "namespace", KEDA_NAMESPACE, check=False)
    kubectl(control_plane, "create", "namespace", SYSTEM, check=False)
    established(control_plane, "crd/scaledobjects.keda.sh", "crd/triggerauthentications.keda.sh")
    # mTLS between the operator's metrics gRPC service and the metrics apiserver: both read
    # ca.crt, tls.crt and tls.key from their --cert-dir.
    certs = work / "certs"
    certs.mkdir()
    ca = pki.new_ca(certs, "ca")
    pair = pki.issue(
        ca,
        certs,
        "tls",
        common_name="keda-operator",
        dns_names=("localhost", f"keda-operator.{KEDA_NAMESPACE}.svc"),
        ip_addresses=("127.0.0.1",),
        server=True,
        client=True,
    )
    serving = pki.issue(
        ca,
        work,
        "adapter-serving",
        common_name=f"keda-metrics-apiserver.{KEDA_NAMESPACE}.svc",
        dns_names=(f"keda-metrics-apiserver.{KEDA_NAMESPACE}.svc", "localhost"),
        ip_addresses=("127.0.0.1",),
        server=True,
    )
    assert pair.cert.name == "tls.crt"
    grpc_port = free_port()
    env = {
        "WATCH_NAMESPACE": "",
        "POD_NAMESPACE": KEDA_NAMESPACE,
        "KEDA_CLUSTER_OBJECT_NAMESPACE": KEDA_NAMESPACE,
        "OPERATOR_NAME": "keda-operator",
        "KUBECONFIG": str(control_plane.kubeconfig),
    }
    operator = ServerProcess(
        name="keda-operator",
        binary=str(keda_binaries / "keda-operator"),
        directory=work,
        ports=2,
        env=env,
        args=lambda ports, _: [
            f"--kubeconfig={control_plane.kubeconfig}",
            f"--cert-dir={certs}",
            "--enable-cert-rotation=false",
            "--leader-elect=false",
            f"--metrics-bind-address=127.0.0.1:{ports[0]}",
            f"--health-probe-bind-address=127.0.0.1:{ports[1]}",
            f"--metrics-service-bind-address=127.0.0.1:{grpc_port}",
            "--zap-log-level=info",
        ],
    )
    adapter = ServerProcess(
        name="keda-adapter",
        binary=str(keda_binaries / "keda-adapter"),
        directory=work,
        ports=2,
        env=env,
        args=lambda ports, _: [
            f"--metrics-service-address=localhost:{grpc_port}",
            f"--cert-dir={certs}",
            f"--client-ca-file={control_plane.pki_dir / 'ca.crt'}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            f"--lister-kubeconfig={control_plane.kubeconfig}",
            f"--authentication-kubeconfig={control_plane.kubeconfig}",
            f"--authorization-kubeconfig={control_plane.kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports[0]}",
            # its own Prometheus metrics server (default :8080)
            f"--port={ports[1]}",
        ],
    )
    operator.start()
    try:
        operator.wait_ready(
            lambda: http_ok(f"http://127.0.0.1:{operator.ports[1]}/readyz"),
            timeout=120,
            what="the KEDA operator ready",
        )
        adapter.start()
        adapter.wait_ready(
            lambda: _https_answers(adapter.port), timeout=120, what="the KEDA metrics apiserver"
        )
        keda = Keda(operator, adapter, work)
        # The HPA KEDA creates reads its metric through external.metrics.k8s.io: without the
        # APIService the cron window only ever activates 0 -> 1.
        register_keda_external(control_plane, keda)
        adapter.wait_ready(
            lambda: apiservice_available(control_plane),
            timeout=90,
            what=f"APIService {EXTERNAL_APISERVICE} Available",
        )
        yield keda
    finally:
        kubectl(control_plane, "delete", "--ignore-not-found", f"apiservice/{EXTERNAL_APISERVICE}",
                check=False)  # fmt: skip
        adapter.stop()
        operator.stop()


def register_keda_external(cp: ControlPlane, keda: Keda) -> None:
    """KEDA's metrics apiserver as the cluster's external.metrics.k8s.io, through an
    ExternalName Service (as Updraft's own e2e registers Updraft)."""
    register_external(
        cp,
        keda.work,
        namespace=KEDA_NAMESPACE,
        service="keda-metrics-apiserver",
        port=keda.adapter.port,
        ca=keda.work / "certs" / "ca.crt",
    )


def register_external(
    cp: ControlPlane, work: Path, *, namespace: str, service: str, port: int, ca: Path
) -> None:
    """`namespace/service` (an ExternalName for localhost:`port`, serving a certificate `ca`
    signed) as the cluster's external.metrics.k8s.io; replaces whichever owned it."""
    apply(
        cp,
        work,
        f"{service}-apiservice",
        [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": service, "namespace": namespace},
                "spec": {
                    "type": "ExternalName",
                    "externalName": "localhost",
                    "ports": [{"name": "https", "port": port}],
                },
            },
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": EXTERNAL_APISERVICE},
                "spec": {
                    "group": "external.metrics.k8s.io",
                    "version": "v1beta1",
                    "service": {"namespace": namespace, "name": service, "port": port},
                    "caBundle": base64.b64encode(ca.read_bytes()).decode(),
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                },
            },
        ],
    )


def apiservice_available(cp: ControlPlane) -> bool:
    out = kubectl(cp, "get", f"apiservice/{EXTERNAL_APISERVICE}", "-o", "json", check=False)
    if not out:
        return False
    conditions = orjson.loads(out).get("status", {}).get("conditions", [])
    return any(c.get("type") == "Available" and c.get("status") == "True" for c in conditions)


def _https_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
