"""`updraft recommend` against the real control plane and a real Prometheus holding a
synthetic day of cAdvisor series, backfilled with promtool before Prometheus starts.

The workloads are real: a Deployment (pods -> ReplicaSet -> Deployment) and a StatefulSet of
two containers, their pods running on a kwok node. Their usage is written for the pods the
controllers created, and the test computes what the recommendation must be on its own (the
nearest-rank percentile of the per-minute rates it wrote, the highest working set it wrote,
the margin, the floors), and what it must save: a fresh simulation of every pod in the cluster
as the API lists it, today's against the test's own re-sized copies. The YAML it prints is
applied with kubectl, and the objects then carry the new requests.
"""

from __future__ import annotations

import contextlib
import copy
import math
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from kubernetes_asyncio import client

from kits import format_rfc3339
from kube import JSON, NODES, PODS, Api, NotFoundError
from provisioner import Catalog, InvalidFieldError, pod_from_k8s, pod_from_template, simulate
from provisioner.objects import DAEMONSETS, NODECLASSES, NODEPOOLS, validate_nodepool
from tests.cluster.controlplane import KWOK_ANNOTATION, REPO, ControlPlane
from tests.e2e.test_provisioner import _kubectl
from tests.e2e.waiting import eventually
from tests.servers.process import ServerProcess, free_port, require_binary
from tests.servers.prometheus import start_prometheus_with
from tests.servers.updraft import UPDRAFT
from updraft.recommend.workloads import DEPLOYMENTS, STATEFULSETS

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
TENANT = "updraft.io/e2e-recommend"
MIB = 2**20
DAY = 86400
SCRAPE = 15
"""Seconds between the synthetic samples (a kubelet scraped every 15 s)."""


@pytest.fixture(scope="module")
def crds(control_plane: ControlPlane) -> ControlPlane:
    _kubectl(control_plane, "apply", "--server-side", "-k", str(REPO / "manifests" / "crds"))
    _kubectl(
        control_plane,
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/nodepools.updraft.io",
        "crd/nodeclasses.updraft.io",
    )
    return control_plane


# --- the synthetic day ----------------------------------------------------------------------
# Per pod and container: the CPU rate (cores) of minute m of the day, and the working set
# (bytes) of sample s. Rates are multiples of 1/128 so the counters stay exact in binary.


def _web_cpu(pod: int) -> Callable[[int], float]:
    if pod == 0:
        return lambda m: 0.75 if m % 20 < 2 else 1.5 if m % 20 == 2 else 0.25
    return lambda m: 0.5 if m % 10 == 0 else 0.25


def _db_cpu(pod: int, container: str) -> Callable[[int], float]:
    if container == "sidecar":
        return lambda m: 1 / 128
    if pod == 0:
        return lambda m: 0.125 if m % 4 == 0 else 1.0
    return lambda m: 0.375


def _memory(base_mib: int, spike: tuple[int, int] | None) -> Callable[[int], int]:
    """``base_mib`` plus a sawtooth; ``spike``: (sample index, bytes) once, off the minute."""

    def at(s: int) -> int:
        if spike is not None and s == spike[0]:
            return spike[1]
        return base_mib * MIB + (s % 97) * 4096

    return at


class Day:
    """The series of the day ending at ``end`` (a minute boundary) for the given pods."""

    def __init__(self, end: int) -> None:
        self.end = end
        self.start = end - DAY
        self.cpu: dict[tuple[str, str, str], Callable[[int], float]] = {}
        self.memory: dict[tuple[str, str, str], Callable[[int], int]] = {}

    def rates(self, key: tuple[str, str, str]) -> list[float]:
        """The rate of each minute of the window: what rate(...[1m]) at each step must be."""
        return [self.cpu[key](m) for m in range(DAY // 60)]

    def peak(self, key: tuple[str, str, str]) -> int:
        return max(self.memory[key](s) for s in range(1, DAY // SCRAPE + 1))

    def openmetrics(self) -> str:
        lines = ["# TYPE container_cpu_usage_seconds_total counter"]
        for (ns, pod, container), rate in self.cpu.items():
            labels = f'namespace="{ns}",pod="{pod}",container="{container}"'
            total = 1000.0
            # From five minutes before the window, so the first step's range has samples.
            for s in range(-300 // SCRAPE, DAY // SCRAPE + 1):
                at = self.start + s * SCRAPE
                if s > -300 // SCRAPE:
                    # The 15 s ending at `at` lie in minute ceil((at - start) / 60) - 1.
                    total += rate(max(0, math.ceil(s * SCRAPE / 60) - 1)) * SCRAPE
                lines.append(f"container_cpu_usage_seconds_total{{{labels}}} {total!r} {at}")
        lines.append("# TYPE container_memory_working_set_bytes gauge")
        for (ns, pod, container), memory in self.memory.items():
            labels = f'namespace="{ns}",pod="{pod}",container="{container}"'
            for s in range(1, DAY // SCRAPE + 1):
                at = self.start + s * SCRAPE
                lines.append(f"container_memory_working_set_bytes{{{labels}}} {memory(s)} {at}")
        lines.append("# EOF")
        return "\n".join(lines) + "\n"


def nearest_rank(values: list[float], q: float) -> float:
    """Written apart from the command's: sort, count."""
    ordered = sorted(values)
    k = 0
    while (k + 1) < q * len(ordered) - 1e-9:
        k += 1
    return ordered[k]


def _ceil_millis(cores: float) -> int:
    return math.ceil(round(cores * 1000, 6))


def _ceil_mib(value: float) -> int:
    return math.ceil(round(value / MIB, 6))


# --- the cluster ----------------------------------------------------------------------------


class Shop:
    def __init__(self, api: Api, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.id = uuid.uuid4().hex[:8]
        self.node = f"recommend-{self.id}"
        self.pool = f"recommend-{self.id}"

    def template(self, app: str, containers: Mapping[str, tuple[str, str]]) -> JSON:
        return {
            "metadata": {"labels": {"app": app}},
            "spec": {
                "nodeSelector": {TENANT: self.id},
                "tolerations": [{"key": TENANT, "operator": "Equal", "value": self.id}],
                "terminationGracePeriodSeconds": 0,
                "containers": [
                    {
                        "name": name,
                        "image": PAUSE_IMAGE,
                        "resources": {"requests": {"cpu": cpu, "memory": memory}},
                    }
                    for name, (cpu, memory) in containers.items()
                ],
            },
        }

    async def create(self) -> None:
        key, value = KWOK_ANNOTATION
        resources = {"cpu": "64", "memory": "256Gi", "pods": "110"}
        await self.api.create(
            NODES,
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": self.node,
                    "annotations": {key: value},
                    "labels": {"kubernetes.io/hostname": self.node, TENANT: self.id},
                },
                "spec": {"taints": [{"key": TENANT, "value": self.id, "effect": "NoSchedule"}]},
                "status": {"capacity": resources, "allocatable": resources},
            },
        )
        await self.api.create(
            NODECLASSES,
            {
                "apiVersion": "updraft.io/v1alpha1",
                "kind": "NodeClass",
                "metadata": {"name": self.pool},
                "spec": {"zones": ["us-east-1a", "us-east-1b"]},
            },
        )
        await self.api.create(NODEPOOLS, self.nodepool())
        web = {"app": ("2", "2Gi")}
        await self.api.create(
            DEPLOYMENTS,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web"},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": self.template("web", web),
                },
            },
            self.namespace,
        )
        db = {"db": ("2", "4Gi"), "sidecar": ("500m", "512Mi")}
        await self.api.create(
            STATEFULSETS,
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": "db"},
                "spec": {
                    "replicas": 2,
                    "serviceName": "db",
                    "podManagementPolicy": "Parallel",
                    "selector": {"matchLabels": {"app": "db"}},
                    "template": self.template("db", db),
                },
            },
            self.namespace,
        )

    def nodepool(self) -> JSON:
        return {
            "apiVersion": "updraft.io/v1alpha1",
            "kind": "NodePool",
            "metadata": {"name": self.pool},
            "spec": {
                "template": {
                    "metadata": {"labels": {TENANT: self.id}},
                    "spec": {
                        "nodeClassRef": {
                            "group": "updraft.io",
                            "kind": "NodeClass",
                            "name": self.pool,
                        },
                        "taints": [{"key": TENANT, "value": self.id, "effect": "NoSchedule"}],
                        "requirements": [
                            {
                                "key": "node.kubernetes.io/instance-type",
                                "operator": "In",
                                "values": ["m5.large", "m5.xlarge", "m5.2xlarge", "c5.xlarge"],
                            },
                            {
                                "key": "karpenter.sh/capacity-type",
                                "operator": "In",
                                "values": ["on-demand"],
                            },
                        ],
                    },
                }
            },
        }

    async def running(self, app: str, count: int) -> list[JSON]:
        async def all_running() -> list[JSON] | None:
            items, _ = await self.api.list(PODS, self.namespace, label_selector=f"app={app}")
            ok = len(items) == count and all(p["status"].get("phase") == "Running" for p in items)
            return items if ok else None

        return await eventually(all_running, within=120, what=f"{count} {app} pods Running")

    async def cleanup(self) -> None:
        for resource, name in ((DEPLOYMENTS, "web"), (STATEFULSETS, "db")):
            with contextlib.suppress(NotFoundError):
                await self.api.delete(resource, name, self.namespace)
        for resource, name in (
            (NODEPOOLS, self.pool),
            (NODECLASSES, self.pool),
            (NODES, self.node),
        ):
            with contextlib.suppress(NotFoundError):
                await self.api.delete(resource, name)


@pytest.fixture
async def shop(kube: client.ApiClient, crds: ControlPlane, namespace: str) -> AsyncIterator[Shop]:
    s = Shop(Api(kube), namespace)
    try:
        yield s
    finally:
        await s.cleanup()


@pytest.fixture
def backfilled(tmp_path: Path) -> Iterator[Callable[[Day], ServerProcess]]:
    """Start a Prometheus whose TSDB holds `day`, written by promtool before it starts."""
    servers: list[ServerProcess] = []

    def start(day: Day) -> ServerProcess:
        directory = tmp_path / "prometheus"
        directory.mkdir()
        series = directory / "day.om"
        series.write_text(day.openmetrics())
        done = subprocess.run(
            [
                require_binary("promtool"),
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                str(series),
                str(directory / "data"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        server = start_prometheus_with(directory, "global:\n  scrape_interval: 1m\n")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _recommend(cp: ControlPlane, prometheus: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            UPDRAFT,
            "recommend",
            f"--kubeconfig={cp.kubeconfig}",
            f"--prometheus-url={prometheus}",
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )


def _resized(pod: JSON, requests: Mapping[str, Mapping[str, str]]) -> JSON:
    out = copy.deepcopy(pod)
    out["metadata"].pop("resourceVersion", None)
    for container in out["spec"]["containers"]:
        if container["name"] in requests:
            container["resources"]["requests"] = dict(requests[container["name"]])
    return out


async def test_recommend_on_a_synthetic_day(
    shop: Shop, crds: ControlPlane, backfilled: Callable[[Day], ServerProcess], tmp_path: Path
) -> None:
    await shop.create()
    web_pods = await shop.running("web", 2)
    await shop.running("db", 2)
    ns = shop.namespace

    end = (int(time.time()) // 60) * 60 - 3600
    day = Day(end)
    web_names = sorted(p["metadata"]["name"] for p in web_pods)
    for i, name in enumerate(web_names):
        day.cpu[(ns, name, "app")] = _web_cpu(i)
        spike = (i * 1000 + 2003, 700 * MIB + 12345) if i == 1 else None
        day.memory[(ns, name, "app")] = _memory(300, spike)
    for i in range(2):
        for container in ("db", "sidecar"):
            day.cpu[(ns, f"db-{i}", container)] = _db_cpu(i, container)
            base = 20 if container == "sidecar" else 1500 + 100 * i
            day.memory[(ns, f"db-{i}", container)] = _memory(base, None)
    prometheus = backfilled(day)
    url = f"http://127.0.0.1:{prometheus.port}"

    # What the recommendation must be, computed here from what was written.
    def expect(keys: list[tuple[str, str, str]], containers: int) -> dict[str, str]:
        rate = nearest_rank([r for k in keys for r in day.rates(k)], 0.9)
        peak = max(day.peak(k) for k in keys)
        cpu = max(_ceil_millis(rate * 1.15), math.ceil(25 / containers))
        memory = max(_ceil_mib(peak * 1.15), math.ceil(250 / containers))
        return {"cpu": f"{cpu}m" if cpu % 1000 else str(cpu // 1000), "memory": f"{memory}Mi"}

    want = {
        ("web", "app"): expect([(ns, n, "app") for n in web_names], 1),
        ("db", "db"): expect([(ns, f"db-{i}", "db") for i in range(2)], 2),
        ("db", "sidecar"): expect([(ns, f"db-{i}", "sidecar") for i in range(2)], 2),
    }
    assert want[("web", "app")] == {"cpu": "575m", "memory": "806Mi"}  # 0.5 x 1.15; 700Mi+ x 1.15
    assert want[("db", "sidecar")] == {"cpu": "13m", "memory": "125Mi"}  # the floors, halved

    flags = [
        f"--namespace={ns}",
        f"--end={format_rfc3339(datetime.fromtimestamp(end, tz=UTC))}",
        "--window=1d",
        "--step=1m",
        "--rate-window=1m",
        "--chunk=6h",
    ]
    done = _recommend(crds, url, *flags, "-o", "json", "--progress=always")
    assert done.returncode == 0, done.stderr
    assert done.stderr.rstrip().endswith("querying Prometheus 8/8")  # 4 chunks x cpu, memory
    report = orjson.loads(done.stdout)
    got = {
        (w["name"], c["name"]): c["recommended"]
        for w in report["workloads"]
        for c in w["containers"]
    }
    assert got == want
    web = next(w for w in report["workloads"] if w["kind"] == "Deployment")
    assert web["containers"][0]["cpuSamples"] == 2 * 1440
    assert web["containers"][0]["cpuPercentileCores"] == 0.5
    assert web["containers"][0]["memoryPercentileBytes"] == 700 * MIB + 12345

    # What it must save: a fresh packing of every pod the API lists, today's and re-sized.
    api = shop.api
    catalog = Catalog.aws()
    nodeclasses = {c["metadata"]["name"]: c for c in (await api.list(NODECLASSES))[0]}
    pools = []
    for obj in (await api.list(NODEPOOLS))[0]:
        ref = obj["spec"]["template"]["spec"].get("nodeClassRef", {}).get("name", "")
        try:
            pools.append(validate_nodepool(obj, nodeclasses.get(ref), catalog))
        except InvalidFieldError:
            continue
    daemonsets = [pod_from_template(d) for d in (await api.list(DAEMONSETS))[0]]
    everyone = [
        p
        for p in (await api.list(PODS))[0]
        if not p["metadata"].get("deletionTimestamp")
        and p["status"].get("phase") not in ("Succeeded", "Failed")
        and not any(r.get("kind") == "DaemonSet" for r in p["metadata"].get("ownerReferences", []))
    ]

    def price(pods: list[JSON]) -> float:
        result = simulate(
            [pod_from_k8s(p) for p in pods], nodepools=pools, catalog=catalog, daemonsets=daemonsets
        )
        return result.price

    def owned_by(pod: JSON, app: str) -> bool:
        meta = pod["metadata"]
        return bool(meta["namespace"] == ns and meta.get("labels", {}).get("app") == app)

    web_new = {"app": want[("web", "app")]}
    db_new = {"db": want[("db", "db")], "sidecar": want[("db", "sidecar")]}
    today = price(everyone)
    web_only = price([_resized(p, web_new) if owned_by(p, "web") else p for p in everyone])
    both = price(
        [
            _resized(p, web_new)
            if owned_by(p, "web")
            else _resized(p, db_new)
            if owned_by(p, "db")
            else p
            for p in everyone
        ]
    )
    assert report["today"]["pricePerHour"] == pytest.approx(today, abs=1e-6)
    assert web["savingPerHour"] == pytest.approx(today - web_only, abs=1e-6)
    assert report["savingPerHour"] == pytest.approx(today - both, abs=1e-6)
    assert report["savingPerHour"] > 0

    # The table says the same, and the YAML applies.
    table = _recommend(crds, url, *flags)
    assert table.returncode == 0, table.stderr
    assert f"{ns}/deployment/web" in table.stdout
    assert "2 -> 575m" in table.stdout
    assert table.stderr == ""  # no progress line: stderr is not a terminal
    patch = _recommend(crds, url, *flags, "-o", "yaml")
    assert patch.returncode == 0, patch.stderr
    patch_file = tmp_path / "recommend.yaml"
    patch_file.write_text(patch.stdout)
    apply = ["apply", "--server-side", "--force-conflicts", "--field-manager=updraft-recommend"]
    _kubectl(crds, *apply, "-f", str(patch_file))
    deployment = await api.get(DEPLOYMENTS, "web", ns)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"] == want[("web", "app")]
    assert container["image"] == PAUSE_IMAGE  # the rest of the object is untouched
    statefulset = await api.get(STATEFULSETS, "db", ns)
    requests = {
        c["name"]: c["resources"]["requests"]
        for c in statefulset["spec"]["template"]["spec"]["containers"]
    }
    assert requests == {"db": want[("db", "db")], "sidecar": want[("db", "sidecar")]}


async def test_a_prometheus_outage_is_one_line_and_exit_1(crds: ControlPlane) -> None:
    done = _recommend(crds, f"http://127.0.0.1:{free_port()}", "--window=1h", "--namespace=x")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("updraft recommend: Prometheus at http://127.0.0.1:")
    assert "unreachable" in lines[0]
