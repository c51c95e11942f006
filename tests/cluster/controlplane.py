"""A real Kubernetes control plane on loopback, for e2e tests and `make cluster-up`.

Owns starting, waiting for and stopping etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok from the binaries `hack/kube/build.sh` builds, and the state directory
they share (PKI, kubeconfigs, data, logs, pids). It must not build anything: a missing binary is
an error that says to run `make setup`.

This module is synchronous on purpose: it manages OS processes that outlive the Python process
that started them (`make cluster-up` returns while the cluster keeps running), and the pytest
fixture that calls it is a plain session fixture, outside any event loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tests.cluster import pki
from tests.servers.process import free_port

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "hack" / "kube" / "build.sh"
DEFAULT_STATE_DIR = REPO / ".cache" / "cluster"
KWOK_STAGES = Path(__file__).resolve().parent / "kwok-stages.yaml"

KWOK_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
"""Nodes carrying this annotation are the ones kwok keeps Ready and whose pods it runs."""

RESERVED_PORTS = frozenset({6443, 9090, 8080})
"""Updraft's own defaults (metrics API, gRPC, /metrics): the control plane never takes them."""

SERVICE_CIDR = "10.96.0.0/16"
HPA_SYNC_PERIOD = "1s"
"""The HPA controller's default is 15 s; tests want scale decisions within a few seconds."""

START_TIMEOUT = 120.0
"""Seconds to wait for every component: the apiserver's first start (bootstrap RBAC,
priority levels, CRD informers) takes 5-20 s on two busy cores, leader election a few more."""

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
"""Processes this Python process started, kept so they are reaped (no zombies, and no
"subprocess still running" ResourceWarning when a Popen object would be collected)."""


class ControlPlaneError(RuntimeError):
    """The control plane could not be started, reached or found."""


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int


def _free_port(taken: set[int]) -> int:
    while True:
        port = free_port()
        if port not in taken and port not in RESERVED_PORTS:
            taken.add(port)
            return port


def allocate_ports() -> Ports:
    taken: set[int] = set()
    return Ports(*(_free_port(taken) for _ in range(6)))


def binary_dir() -> Path:
    """Where build.sh puts (or has put) the binaries; checks each is there."""
    out = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print-dir"], check=True, capture_output=True, text=True
    )
    bin_dir = Path(out.stdout.strip())
    missing = [c for c in COMPONENTS if not (bin_dir / c).is_file()]
    if missing:
        raise ControlPlaneError(
            f"control-plane binaries missing from {bin_dir}: {', '.join(missing)}; "
            "run `make setup` (it builds them from the Go module proxy)"
        )
    return bin_dir


def write_kubeconfig(path: Path, *, server: str, ca: Path, user: dict[str, str], name: str) -> Path:
    """A one-context kubeconfig for `user` (client-certificate/-key paths, or a token).
    JSON is valid YAML, and every kubeconfig reader accepts it."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "updraft-test",
                "cluster": {"server": server, "certificate-authority": str(ca)},
            }
        ],
        "users": [
            {
                "name": name,
                "user": user,
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": "updraft-test", "user": name}}],
        "current-context": name,
    }
    path.write_text(json.dumps(doc, indent=2))
    path.chmod(0o600)
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by us) still answers kill(0).
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@dataclass(frozen=True)
class ControlPlane:
    """One control plane's state directory; methods start, probe and stop it."""

    state_dir: Path = DEFAULT_STATE_DIR

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pki_dir(self) -> Path:
        return self.state_dir / "pki"

    @property
    def _state_file(self) -> Path:
        return self.state_dir / "state.json"

    # -- state ---------------------------------------------------------------------------

    def _read_state(self) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return None
        return state

    def ports(self) -> Ports:
        state = self._read_state()
        if state is None:
            raise ControlPlaneError(f"no control plane state in {self.state_dir}")
        return Ports(**state["ports"])

    def pids(self) -> dict[str, int]:
        state = self._read_state()
        return {} if state is None else dict(state["pids"])

    def apiserver_url(self) -> str:
        return f"https://127.0.0.1:{self.ports().apiserver}"

    def is_up(self) -> bool:
        """Every recorded process is alive and the apiserver answers /readyz."""
        pids = self.pids()
        if set(pids) != set(COMPONENTS) or not all(_pid_alive(p) for p in pids.values()):
            return False
        try:
            status, _ = self.get("/readyz")
        except (OSError, ControlPlaneError):
            return False
        return status == 200

    # -- HTTP to the apiserver as admin ------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki_dir / "ca.crt"))
        ctx.load_cert_chain(str(self.pki_dir / "admin.crt"), str(self.pki_dir / "admin.key"))
        return ctx

    def get(self, path: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
        """GET `path` from the apiserver as cluster admin; returns (status, body)."""
        req = urllib.request.Request(self.apiserver_url() + path)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self._ssl_context()) as r:
                return int(r.status), bytes(r.read())
        except urllib.error.HTTPError as e:
            return int(e.code), bytes(e.read())

    # -- lifecycle -------------------------------------------------------------------------

    def up(self) -> bool:
        """Start the control plane unless one is already up here; True if this call started it."""
        if self.is_up():
            return False
        self.down()
        bin_dir = binary_dir()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(exist_ok=True)
        self.pki_dir.mkdir(exist_ok=True)
        ports = allocate_ports()
        self._write_pki_and_kubeconfigs(ports)
        pids: dict[str, int] = {}
        self._state_file.write_text(json.dumps({"ports": asdict(ports), "pids": pids}))
        try:
            for component in COMPONENTS:
                pids[component] = self._spawn(component, bin_dir, ports)
                self._state_file.write_text(json.dumps({"ports": asdict(ports), "pids": pids}))
                self._wait_ready(component, ports)
        except BaseException:
            print(self.log_tails())
            self.down()
            raise
        return True

    def down(self) -> None:
        """Stop every component (TERM, then KILL) and remove the state directory."""
        pids = self.pids()
        # Reverse start order: kwok and the controllers go before the apiserver, etcd last.
        for component in reversed(COMPONENTS):
            pid = pids.get(component)
            if pid is not None:
                _stop(pid)
        if self.state_dir.exists():
            subprocess.run(["rm", "-rf", str(self.state_dir)], check=True)

    def compact_etcd(self) -> int:
        """Compact etcd's history up to now (what kube-apiserver does every 5 min); watches
        from an older resourceVersion that etcd serves then fail with 410 Gone."""
        base = f"http://127.0.0.1:{self.ports().etcd_client}/v3/kv"
        head = _post_json(f"{base}/range", {"key": "AA=="})  # any key: we want the header
        revision = int(head["header"]["revision"])
        _post_json(f"{base}/compaction", {"revision": revision, "physical": True})
        return revision

    def peak_memory(self) -> dict[str, int]:
        """Peak resident memory (VmHWM) of each running component, in KiB."""
        peaks: dict[str, int] = {}
        for component, pid in self.pids().items():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks[component] = int(line.split()[1])
        return peaks

    def log_tails(self, lines: int = 30) -> str:
        """The last lines of every component's log, for a failed test's report."""
        parts: list[str] = []
        for component in COMPONENTS:
            log = self.logs_dir / f"{component}.log"
            if not log.exists():
                continue
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"----- {log} (last {len(tail)} lines) -----")
            parts.extend(tail)
        return "\n".join(parts)

    # -- internals -------------------------------------------------------------------------

    def _write_pki_and_kubeconfigs(self, ports: Ports) -> None:
        d = self.pki_dir
        ca = pki.new_ca(d, "ca")
        front_proxy_ca = pki.new_ca(d, "front-proxy-ca")
        pki.issue(
            ca,
            d,
            "apiserver",
            common_name="kube-apiserver",
            dns_names=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            ip_addresses=("127.0.0.1", "10.96.0.1"),
            server=True,
        )
        pki.issue(
            front_proxy_ca, d, "front-proxy-client", common_name="front-proxy-client", client=True
        )
        pki.service_account_keys(d)
        server = f"https://127.0.0.1:{ports.apiserver}"
        users = {
            "admin": ("kubernetes-admin", "system:masters"),
            "controller-manager": ("system:kube-controller-manager", None),
            "scheduler": ("system:kube-scheduler", None),
            # kwok writes node and pod status for nodes no kubelet owns: it needs admin rights.
            "kwok": ("kwok", "system:masters"),
        }
        for name, (cn, org) in users.items():
            pair = pki.issue(ca, d, name, common_name=cn, organization=org, client=True)
            path = self.kubeconfig if name == "admin" else self.state_dir / f"{name}.kubeconfig"
            user = {"client-certificate": str(pair.cert), "client-key": str(pair.key)}
            write_kubeconfig(path, server=server, ca=ca.files.cert, user=user, name=name)

    def _command(self, component: str, bin_dir: Path, ports: Ports) -> list[str]:
        d = self.pki_dir
        s = self.state_dir
        exe = str(bin_dir / component)
        if component == "etcd":
            return [
                exe,
                "--name=updraft-test",
                f"--data-dir={s / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{ports.etcd_client}",
                f"--advertise-client-urls=http://127.0.0.1:{ports.etcd_client}",
                f"--listen-peer-urls=http://127.0.0.1:{ports.etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{ports.etcd_peer}",
                f"--initial-cluster=updraft-test=http://127.0.0.1:{ports.etcd_peer}",
                # Tests write little and the state is thrown away: skip fsync-heavy defaults.
                "--unsafe-no-fsync",
                "--quota-backend-bytes=2147483648",
                "--log-level=warn",
            ]
        if component == "kube-apiserver":
            return [
                exe,
                f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={ports.apiserver}",
                f"--tls-cert-file={d / 'apiserver.crt'}",
                f"--tls-private-key-file={d / 'apiserver.key'}",
                f"--client-ca-file={d / 'ca.crt'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={d / 'sa.pub'}",
                f"--service-account-signing-key-file={d / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                # The aggregation layer: how kube-apiserver proves itself to Updraft's adapter.
                f"--requestheader-client-ca-file={d / 'front-proxy-ca.crt'}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={d / 'front-proxy-client.crt'}",
                f"--proxy-client-key-file={d / 'front-proxy-client.key'}",
                # A loopback address may not appear in the kubernetes Endpoints object.
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--profiling=false",
                # PodTemplates are watched straight from etcd (no watch cache), so a test can
                # compact etcd's history and get a real 410 Gone from a watch.
                "--watch-cache-sizes=podtemplates#0",
            ]
        if component == "kube-controller-manager":
            kc = s / "controller-manager.kubeconfig"
            return [
                exe,
                f"--kubeconfig={kc}",
                f"--authentication-kubeconfig={kc}",
                f"--authorization-kubeconfig={kc}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports.controller_manager}",
                "--leader-elect=true",
                # Controllers act as their own service accounts (the HPA as
                # kube-system/horizontal-pod-autoscaler), so RBAC is exercised as in a cluster.
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={d / 'sa.key'}",
                f"--root-ca-file={d / 'ca.crt'}",
                f"--cluster-signing-cert-file={d / 'ca.crt'}",
                f"--cluster-signing-key-file={d / 'ca.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--horizontal-pod-autoscaler-sync-period={HPA_SYNC_PERIOD}",
                "--profiling=false",
            ]
        if component == "kube-scheduler":
            kc = s / "scheduler.kubeconfig"
            return [
                exe,
                f"--kubeconfig={kc}",
                f"--authentication-kubeconfig={kc}",
                f"--authorization-kubeconfig={kc}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports.scheduler}",
                "--leader-elect=true",
                "--profiling=false",
            ]
        if component == "kwok":
            key, value = KWOK_ANNOTATION
            return [
                exe,
                f"--kubeconfig={s / 'kwok.kubeconfig'}",
                f"--config={KWOK_STAGES}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={key}={value}",
                f"--server-address=127.0.0.1:{ports.kwok}",
                "--node-lease-duration-seconds=40",
                "--cidr=10.244.0.0/16",
                "--node-ip=10.244.0.1",
            ]
        raise ControlPlaneError(f"unknown component {component!r}")

    def _spawn(self, component: str, bin_dir: Path, ports: Ports) -> int:
        log = (self.logs_dir / f"{component}.log").open("ab")
        with log:
            proc = subprocess.Popen(
                self._command(component, bin_dir, ports),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                # Its own session: `make cluster-up` returns and the component keeps running.
                start_new_session=True,
            )
        _CHILDREN[proc.pid] = proc
        return proc.pid

    def _wait_ready(self, component: str, ports: Ports) -> None:
        checks: dict[str, Callable[[], bool]] = {
            "etcd": lambda: _http_ok(f"http://127.0.0.1:{ports.etcd_client}/health", None),
            "kube-apiserver": lambda: self._api_ok("/readyz"),
            "kube-controller-manager": lambda: self._lease_held("kube-controller-manager"),
            "kube-scheduler": lambda: self._lease_held("kube-scheduler"),
            "kwok": lambda: _http_ok(f"http://127.0.0.1:{ports.kwok}/healthz", None),
        }
        check = checks[component]
        deadline = time.monotonic() + START_TIMEOUT
        pid = self.pids()[component]
        delay = 0.05
        while True:
            if not _pid_alive(pid):
                raise ControlPlaneError(
                    f"{component} exited during start-up; see {self.logs_dir / component}.log"
                )
            with contextlib.suppress(OSError, ControlPlaneError):
                if check():
                    return
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"{component} not ready after {START_TIMEOUT:.0f} s")
            # Polling, with a capped backoff: readiness is an observed state, never a fixed sleep.
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def _api_ok(self, path: str) -> bool:
        status, _ = self.get(path)
        return status == 200

    def _lease_held(self, name: str) -> bool:
        status, body = self.get(
            f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{name}"
        )
        if status != 200:
            return False
        spec = json.loads(body).get("spec", {})
        return bool(spec.get("holderIdentity"))


def _post_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=10.0) as r:
        answer: dict[str, Any] = json.loads(r.read())
        return answer


def _http_ok(url: str, ctx: ssl.SSLContext | None) -> bool:
    with urllib.request.urlopen(url, timeout=2.0, context=ctx) as r:
        return int(r.status) == 200


def _stop(pid: int, grace: float = 10.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        child.wait()


@contextlib.contextmanager
def running(state_dir: Path = DEFAULT_STATE_DIR) -> Iterator[ControlPlane]:
    """A control plane for the duration of the block: reuses one that is up, else starts one
    and stops it afterwards."""
    cp = ControlPlane(state_dir)
    started = cp.up()
    try:
        yield cp
    finally:
        if started:
            cp.down()
