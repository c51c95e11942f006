"""The node provisioner against the real control plane: `updraft provisioner --cloud-provider
kwok` runs as a real process, the real scheduler binds the pods, kwok makes the nodes Ready.

Every test works in its own "tenant": a NodeClass and NodePools whose nodes carry a unique label
and a unique NoSchedule taint, and pods that select the label and tolerate the taint. So nodes
other tests leave behind never take these pods, and these pools never launch nodes for pods of
other tests (those get an Event from the provisioner, nothing more).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import subprocess
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client

from kits import cancel_and_wait
from kube import EVENTS, JSON, NODES, PODS, Api, NotFoundError, Resource
from provisioner import Catalog
from provisioner.objects import BATCH_ANNOTATION, NODECLAIMS, NODECLASSES, NODEPOOLS, POOL_LABEL
from tests.cluster.controlplane import REPO, ControlPlane, binary_dir
from tests.e2e.waiting import eventually
from tests.servers.process import ServerProcess, http_ok
from tests.servers.updraft import UPDRAFT

EXAMPLE = REPO / "examples" / "nodepool-basic.yaml"
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
TENANT_LABEL = "updraft.io/e2e-tenant"
DEPLOYMENTS = Resource("apps", "v1", "deployments", namespaced=True)
LEASE_SECONDS = 6
"""Short, so a provisioner restarted after a SIGKILL takes over within seconds."""


# --- helpers --------------------------------------------------------------------------------


def _kubectl(cp: ControlPlane, *args: str) -> str:
    done = subprocess.run(
        [str(binary_dir() / "kubectl"), f"--kubeconfig={cp.kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"kubectl {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
        text = response.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def _ready(obj: JSON) -> str | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return str(cond.get("status"))
    return None


def _prices() -> dict[str, float]:
    return Catalog.aws().prices


def _cheapest_packing(types: list[str], pods: int, cpu_millis: int) -> float:
    """The lowest $/h of any mix of ``types`` that holds ``pods`` pods of ``cpu_millis`` each
    (brute force over counts, allocatable and prices from the packaged catalog)."""
    by_name = {t.name: t for t in Catalog.aws().instance_types()}
    holds = [
        min(by_name[n].allocatable.cpu // cpu_millis, by_name[n].allocatable.pods) for n in types
    ]
    best = float("inf")
    for counts in itertools.product(range(pods + 1), repeat=len(types)):
        if sum(c * h for c, h in zip(counts, holds, strict=True)) >= pods:
            cost = sum(c * _prices()[n] for c, n in zip(counts, types, strict=True))
            best = min(best, cost)
    return best


class Tenant:
    """One test's NodeClass, NodePools, pods and provisioner process, all cleaned up after."""

    def __init__(self, api: Api, cp: ControlPlane, namespace: str, directory: Path) -> None:
        self.api = api
        self.cp = cp
        self.namespace = namespace
        self.id = uuid.uuid4().hex[:8]
        self.directory = directory
        self.pools: list[str] = []
        self.nodeclass = f"e2e-{self.id}"
        self.process: ServerProcess | None = None
        self.lease = f"provisioner-{self.id}"
        self.flags: list[str] = []
        """Extra `updraft provisioner` flags for this test (disruption timings, say)."""

    # the provisioner process

    def _args(self, ports: Sequence[int], _: Path) -> list[str]:
        return [
            "--log-level=debug",
            "provisioner",
            f"--kubeconfig={self.cp.kubeconfig}",
            "--cloud-provider=kwok",
            "--metrics-host=127.0.0.1",
            f"--metrics-port={ports[0]}",
            "--batch-idle-duration=1s",
            "--batch-max-duration=5s",
            f"--leader-election-namespace={self.namespace}",
            f"--leader-election-name={self.lease}",
            f"--leader-election-lease-duration={LEASE_SECONDS}s",
            *self.flags,
        ]

    async def start(self) -> ServerProcess:
        if self.process is None:
            self.process = ServerProcess(
                name="provisioner", binary=UPDRAFT, args=self._args, directory=self.directory
            )
        process = self.process
        process.start()

        async def leading() -> bool | None:
            if not process.running:
                pytest.fail(f"provisioner exited:\n{process.log_tail()}")
            url = f"http://127.0.0.1:{process.port}"
            if not await asyncio.to_thread(http_ok, f"{url}/readyz"):
                return None
            metrics = await asyncio.to_thread(_scrape, process.port)
            return True if metrics.get("updraft_provisioner_leader") == 1.0 else None

        await eventually(leading, within=60, what="the provisioner to sync and lead")
        return process

    @property
    def metrics_port(self) -> int:
        assert self.process is not None
        return self.process.port

    # objects

    async def create_nodeclass(self, **spec: Any) -> None:
        body = {
            "apiVersion": "updraft.io/v1alpha1",
            "kind": "NodeClass",
            "metadata": {"name": self.nodeclass},
            "spec": {"zones": ["us-east-1a", "us-east-1b"], **spec},
        }
        await self.api.create(NODECLASSES, body)

    def pool_from_example(self, suffix: str) -> JSON:
        """The NodePool of examples/nodepool-basic.yaml, made this tenant's: its own name,
        NodeClass, label and taint."""
        docs = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
        pool: JSON = copy.deepcopy(next(d for d in docs if d["kind"] == "NodePool"))
        pool["metadata"] = {"name": f"e2e-{self.id}-{suffix}"}
        template = pool["spec"]["template"]
        template["metadata"]["labels"][TENANT_LABEL] = self.id
        template["spec"]["nodeClassRef"]["name"] = self.nodeclass
        template["spec"]["taints"] = [
            {"key": TENANT_LABEL, "value": self.id, "effect": "NoSchedule"}
        ]
        return pool

    async def create_pool(self, pool: JSON, *, ready: bool = True) -> JSON:
        await self.api.create(NODEPOOLS, pool)
        name = str(pool["metadata"]["name"])
        self.pools.append(name)
        want = "True" if ready else "False"

        async def reported() -> JSON | None:
            obj = await self.api.get(NODEPOOLS, name)
            return obj if _ready(obj) == want else None

        return await eventually(reported, within=30, what=f"NodePool {name} Ready={want}")

    def pod_spec(self, cpu: str = "1", **extra: Any) -> JSON:
        spec: JSON = {
            "nodeSelector": {TENANT_LABEL: self.id},
            "tolerations": [{"key": TENANT_LABEL, "operator": "Equal", "value": self.id}],
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {"name": "pause", "image": PAUSE_IMAGE, "resources": {"requests": {"cpu": cpu}}}
            ],
        }
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(spec.get(key), dict):
                spec[key] = {**spec[key], **value}
            elif isinstance(value, list) and isinstance(spec.get(key), list):
                spec[key] = [*spec[key], *value]
            else:
                spec[key] = value
        return spec

    async def pdb_allowing_none(self, name: str, *, app: str) -> None:
        """A PodDisruptionBudget with `maxUnavailable: 0` over the pods labelled `app`."""
        spec = {"maxUnavailable": 0, "selector": {"matchLabels": {"app": app}}}
        pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name}}
        await self.api.create(PDBS, {**pdb, "spec": spec}, self.namespace)

    async def deployment(
        self,
        name: str,
        replicas: int,
        *,
        pod_annotations: Mapping[str, str] | None = None,
        **spec: Any,
    ) -> None:
        labels = {"app": name}
        template: JSON = {"metadata": {"labels": labels}, "spec": self.pod_spec(**spec)}
        if pod_annotations:
            template["metadata"]["annotations"] = dict(pod_annotations)
        await self.api.create(
            DEPLOYMENTS,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": labels},
                    "template": template,
                },
            },
            self.namespace,
        )

    async def scale(self, name: str, replicas: int) -> None:
        await self.api.patch(DEPLOYMENTS, name, {"spec": {"replicas": replicas}}, self.namespace)

    async def pods(self, app: str) -> list[JSON]:
        items, _ = await self.api.list(PODS, self.namespace, label_selector=f"app={app}")
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    async def running(self, app: str, count: int) -> list[JSON]:
        async def all_running() -> list[JSON] | None:
            pods = await self.pods(app)
            ok = len(pods) == count and all(p["status"].get("phase") == "Running" for p in pods)
            return pods if ok else None

        return await eventually(all_running, within=90, what=f"{count} {app} pods Running")

    async def nodes(self, pool: str) -> list[JSON]:
        items, _ = await self.api.list(NODES, label_selector=f"{POOL_LABEL}={pool}")
        return items

    async def claims(self, pool: str) -> list[JSON]:
        items, _ = await self.api.list(NODECLAIMS, label_selector=f"{POOL_LABEL}={pool}")
        return items

    async def events(self, name: str, reason: str) -> list[JSON]:
        items, _ = await self.api.list(EVENTS, self.namespace)
        return [
            e
            for e in items
            if e["involvedObject"].get("name") == name and e.get("reason") == reason
        ]

    # cleanup

    async def cleanup(self) -> None:
        """Scale to nothing, let the provisioner delete the NodeClaims (and so the nodes), then
        remove the pools and the NodeClass. Without a live provisioner, do its part by hand."""
        items, _ = await self.api.list(DEPLOYMENTS, self.namespace)
        for deployment in items:
            await self.api.delete(DEPLOYMENTS, deployment["metadata"]["name"], self.namespace)
        alive = self.process is not None and self.process.running
        claims = [c for pool in self.pools for c in await self.claims(pool)]
        for claim in claims:
            await _ignore_missing(self.api.delete(NODECLAIMS, claim["metadata"]["name"]))

        async def claims_gone() -> bool | None:
            left = [c for pool in self.pools for c in await self.claims(pool)]
            return True if not left else None

        if alive and claims:
            try:
                await eventually(claims_gone, within=30, what="NodeClaims deleted")
            except AssertionError:
                alive = False
        if not alive:
            for claim in [c for pool in self.pools for c in await self.claims(pool)]:
                name = claim["metadata"]["name"]
                await _ignore_missing(
                    self.api.patch(NODECLAIMS, name, {"metadata": {"finalizers": []}})
                )
        for pool in self.pools:
            for node in await self.nodes(pool):
                name = node["metadata"]["name"]
                if not alive:  # nobody drains it: let go of the termination finalizer
                    await _ignore_missing(
                        self.api.patch(NODES, name, {"metadata": {"finalizers": []}})
                    )
                await _ignore_missing(self.api.delete(NODES, name))
            await _ignore_missing(self.api.delete(NODEPOOLS, pool))
        await _ignore_missing(self.api.delete(NODECLASSES, self.nodeclass))
        if self.process is not None:
            self.process.stop()


async def _ignore_missing(call: Awaitable[Any]) -> None:
    with contextlib.suppress(NotFoundError):
        await call


@pytest.fixture(scope="module")
def crds(control_plane: ControlPlane) -> ControlPlane:
    _kubectl(control_plane, "apply", "--server-side", "-k", str(REPO / "manifests" / "crds"))
    _kubectl(
        control_plane,
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/nodepools.updraft.io",
        "crd/nodeclaims.updraft.io",
        "crd/nodeclasses.updraft.io",
    )
    return control_plane


@pytest.fixture
async def tenant(
    kube: client.ApiClient, crds: ControlPlane, namespace: str, tmp_path: Path
) -> AsyncIterator[Tenant]:
    t = Tenant(Api(kube), crds, namespace, tmp_path)
    try:
        yield t
    finally:
        await t.cleanup()


def _cost(nodes: list[JSON]) -> float:
    prices = _prices()
    return sum(prices[n["metadata"]["labels"]["node.kubernetes.io/instance-type"]] for n in nodes)


# --- 1. a burst becomes the cheapest packing, in one batch -------------------------------------


async def test_burst_of_five_gets_the_cheapest_packing_in_one_batch(tenant: Tenant) -> None:
    await tenant.create_nodeclass()
    await tenant.start()
    pool = tenant.pool_from_example("basic")
    pool_name = pool["metadata"]["name"]
    await tenant.create_pool(pool)
    await tenant.deployment("inflate", 0)
    await tenant.scale("inflate", 5)

    pods = await tenant.running("inflate", 5)
    nodes = await tenant.nodes(pool_name)
    claims = await tenant.claims(pool_name)
    node_names = {n["metadata"]["name"] for n in nodes}
    assert {p["spec"]["nodeName"] for p in pods} <= node_names

    types = ["c5.large", "m5.large", "m5.xlarge"]
    expected = _cheapest_packing(types, pods=5, cpu_millis=1000)
    assert _cost(nodes) == pytest.approx(expected)
    assert all(n["metadata"]["labels"]["karpenter.sh/capacity-type"] == "on-demand" for n in nodes)
    # One batch made every NodeClaim, one node each, and each claim reached Ready.
    assert len({c["metadata"]["annotations"][BATCH_ANNOTATION] for c in claims}) == 1
    assert {c["metadata"]["name"] for c in claims} == node_names

    async def claims_ready() -> list[JSON] | None:
        current = await tenant.claims(pool_name)
        return current if all(_ready(c) == "True" for c in current) else None

    ready = await eventually(claims_ready, within=30, what="NodeClaims Ready")
    assert all(c["status"]["providerID"] == f"kwok://{c['status']['nodeName']}" for c in ready)

    async def cost_reported() -> dict[str, float] | None:
        metrics = await asyncio.to_thread(_scrape, tenant.metrics_port)
        cost = metrics.get("updraft_provisioner_launched_cost_per_hour")
        return metrics if cost is not None and cost == pytest.approx(expected) else None

    metrics = await eventually(cost_reported, within=15, what="launched cost on /metrics")
    assert metrics['updraft_provisioner_batches_total{outcome="created"}'] == 1
    assert metrics['updraft_provisioner_nodeclaims{phase="Initialized"}'] == len(nodes)
    by_pool = f'{{nodepool="{pool_name}"}}'
    assert metrics[f"updraft_provisioner_nodepool_nodeclaims{by_pool}"] == len(nodes)
    assert metrics[f"updraft_provisioner_nodepool_cost_per_hour{by_pool}"] == pytest.approx(
        expected
    )
    # Only the provisioner's own series (and the process's): no cache, adapter or gRPC ones.
    foreign = ("updraft_scaler_", "updraft_adapter_", "updraft_grpc_")
    assert [name for name in metrics if name.startswith(foreign)] == []
    assert any(name.startswith("process_") for name in metrics)
    print(f"\n0->5 inflate: {len(nodes)} nodes, ${_cost(nodes):.3f}/h (cheapest {expected:.3f})")


async def test_the_seed_burst_of_twelve_costs_the_optimum_in_one_pass(tenant: Tenant) -> None:
    """12 x 1 cpu on c5.large/m5.large/m5.xlarge: 4 x m5.xlarge ($0.768/h) is the cheapest
    packing, and the live cluster must end up there, from one batch, nothing launched twice."""
    await tenant.create_nodeclass(zones=["us-east-1a", "us-east-1b", "us-east-1c"])
    await tenant.start()
    pool = tenant.pool_from_example("seed")
    pool_name = pool["metadata"]["name"]
    await tenant.create_pool(pool)
    await tenant.deployment("inflate", 12)
    await tenant.running("inflate", 12)
    nodes = await tenant.nodes(pool_name)
    claims = await tenant.claims(pool_name)
    expected = _cheapest_packing(["c5.large", "m5.large", "m5.xlarge"], pods=12, cpu_millis=1000)
    assert expected == pytest.approx(0.768)
    assert _cost(nodes) == pytest.approx(expected)
    assert len({c["metadata"]["annotations"][BATCH_ANNOTATION] for c in claims}) == 1
    assert {c["metadata"]["name"] for c in claims} == {n["metadata"]["name"] for n in nodes}
    # Nothing ties these pods to a zone: the nodes are spread over the NodeClass's zones.
    zones = {n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in nodes}
    assert zones == {"us-east-1a", "us-east-1b", "us-east-1c"}


async def test_five_pods_on_the_c_m_r_families_get_one_node(tenant: Tenant) -> None:
    """Two c5.large and a c5.xlarge cost what one c5.2xlarge costs: the tie goes to one node."""
    await tenant.create_nodeclass()
    await tenant.start()
    pool = tenant.pool_from_example("cmr")
    pool["spec"]["template"]["spec"]["requirements"] = [
        {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["c", "m", "r"]},
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
    ]
    pool_name = pool["metadata"]["name"]
    await tenant.create_pool(pool)
    await tenant.deployment("inflate", 5)
    pods = await tenant.running("inflate", 5)
    nodes = await tenant.nodes(pool_name)
    assert len(nodes) == 1
    assert {p["spec"]["nodeName"] for p in pods} == {nodes[0]["metadata"]["name"]}


# --- 3. limits are never exceeded ---------------------------------------------------------------


async def test_pool_limits_cap_what_is_launched(tenant: Tenant) -> None:
    await tenant.create_nodeclass()
    await tenant.start()
    pool = tenant.pool_from_example("limited")
    pool["spec"]["limits"] = {"cpu": "8"}
    pool_name = pool["metadata"]["name"]
    await tenant.create_pool(pool)
    await tenant.deployment("inflate", 12)

    async def refused() -> list[JSON] | None:
        for pod in await tenant.pods("inflate"):
            if pod["spec"].get("nodeName"):
                continue
            events = await tenant.events(pod["metadata"]["name"], "FailedProvisioning")
            if any("limits (cpu) would be exceeded" in e["message"] for e in events):
                return events
        return None

    await eventually(refused, within=60, what="a pod refused for the pool's cpu limit")

    async def settled() -> list[JSON] | None:
        claims = await tenant.claims(pool_name)
        nodes = await tenant.nodes(pool_name)
        if not claims or len(nodes) != len(claims) or any(_ready(c) != "True" for c in claims):
            return None
        bound = [p for p in await tenant.pods("inflate") if p["spec"].get("nodeName")]
        return nodes if bound else None

    nodes = await eventually(settled, within=60, what="the pool's nodes Ready")
    cpus = sum(int(n["status"]["capacity"]["cpu"]) for n in nodes)
    assert 0 < cpus <= 8
    bound = [p for p in await tenant.pods("inflate") if p["spec"].get("nodeName")]
    assert 0 < len(bound) < 12

    async def status_counted() -> JSON | None:
        obj = await tenant.api.get(NODEPOOLS, pool_name)
        status = obj.get("status") or {}
        counted = status.get("nodes") == len(nodes)
        by_state = status.get("nodesByState") or {}
        return obj if counted and by_state.get("initialized") == len(nodes) else None

    obj = await eventually(status_counted, within=15, what="NodePool status counting its nodes")
    assert int(obj["status"]["resources"]["cpu"]) == cpus
    # Another full pass over the same waiting pods still launches nothing past the limit.
    claims_before = {c["metadata"]["name"] for c in await tenant.claims(pool_name)}
    await tenant.scale("inflate", 20)

    async def more_refused() -> bool | None:
        pods = await tenant.pods("inflate")
        waiting = [p for p in pods if not p["spec"].get("nodeName")]
        if len(pods) != 20 or len(waiting) < 8:
            return None
        for pod in waiting:
            events = await tenant.events(pod["metadata"]["name"], "FailedProvisioning")
            if not any("limits (cpu) would be exceeded" in e["message"] for e in events):
                return None
        return True

    await eventually(more_refused, within=60, what="every new pod refused for the limit")
    assert {c["metadata"]["name"] for c in await tenant.claims(pool_name)} == claims_before
    waiting = [p for p in await tenant.pods("inflate") if not p["spec"].get("nodeName")]

    async def pool_told() -> JSON | None:
        items, _ = await tenant.api.list(EVENTS, "default")
        for event in items:
            if (
                event["involvedObject"].get("name") == pool_name
                and event.get("reason") == "LimitReached"
                and event["message"] == f"limits left {len(waiting)} pending pods without a node"
            ):
                return dict(event)
        return None

    event = await eventually(pool_told, within=30, what="the NodePool's LimitReached Event")
    assert event["type"] == "Warning"
    assert event["involvedObject"]["kind"] == "NodePool"
    # The same count on /metrics, and back to 0 once nothing is pending (no pass runs then).
    limited = f'updraft_provisioner_nodepool_limited_pods{{nodepool="{pool_name}"}}'

    async def limited_is(count: int) -> bool | None:
        metrics = await asyncio.to_thread(_scrape, tenant.metrics_port)
        return True if metrics.get(limited) == count else None

    await eventually(lambda: limited_is(len(waiting)), within=30, what=f"{limited} counted")
    await tenant.scale("inflate", 0)
    await eventually(lambda: limited_is(0), within=60, what=f"{limited} back to 0")


# --- 2. the right pool for a pod, and a pod no pool can fit -------------------------------------


async def test_pod_lands_on_the_only_pool_it_fits_and_an_impossible_pod_is_told_why(
    tenant: Tenant,
) -> None:
    await tenant.create_nodeclass()
    await tenant.start()
    blue = tenant.pool_from_example("blue")
    blue["spec"]["template"]["metadata"]["labels"]["e2e-tier"] = "blue"
    green = tenant.pool_from_example("green")
    green["spec"]["template"]["metadata"]["labels"]["e2e-tier"] = "green"
    green["spec"]["template"]["spec"]["taints"].append(
        {"key": "dedicated", "value": "green", "effect": "NoSchedule"}
    )
    bad = tenant.pool_from_example("bad")
    bad["spec"]["limits"] = {"cpu": "-4"}
    await tenant.create_pool(blue)
    await tenant.create_pool(green)
    invalid = await tenant.create_pool(bad, ready=False)
    ready_cond = next(c for c in invalid["status"]["conditions"] if c["type"] == "Ready")
    assert "spec.limits.cpu" in ready_cond["message"]

    async def bad_event() -> list[JSON] | None:
        items, _ = await tenant.api.list(EVENTS, "default")
        found = [
            e
            for e in items
            if e["involvedObject"].get("name") == bad["metadata"]["name"]
            and "spec.limits.cpu" in e["message"]
        ]
        return found or None

    await eventually(bad_event, within=15, what="a Warning Event naming spec.limits.cpu")

    await tenant.deployment(
        "green",
        1,
        nodeSelector={"e2e-tier": "green"},
        tolerations=[{"key": "dedicated", "operator": "Equal", "value": "green"}],
    )
    await tenant.deployment("huge", 1, cpu="64")
    (pod,) = await tenant.running("green", 1)
    node = await tenant.api.get(NODES, pod["spec"]["nodeName"])
    assert node["metadata"]["labels"][POOL_LABEL] == green["metadata"]["name"]
    assert node["metadata"]["labels"]["e2e-tier"] == "green"

    async def told_why() -> JSON | None:
        (huge,) = await tenant.pods("huge")
        events = await tenant.events(huge["metadata"]["name"], "FailedProvisioning")
        return events[-1] if events else None

    event = await eventually(told_why, within=60, what="a FailedProvisioning Event on huge")
    assert event["type"] == "Warning"
    for pool in (blue, green):
        assert f"nodepool {pool['metadata']['name']!r}" in event["message"]
    assert "no instance type has room for requests cpu=64" in event["message"]
    assert "taint dedicated=green:NoSchedule not tolerated" in event["message"]
    (huge,) = await tenant.pods("huge")
    assert not huge["spec"].get("nodeName")
    assert len(await tenant.claims(blue["metadata"]["name"])) == 0


# --- 4. a restart mid-batch launches nothing twice ----------------------------------------------


async def test_killed_mid_launch_and_restarted_launches_no_duplicates(tenant: Tenant) -> None:
    # Each launch takes 4 s before its node appears: the window to kill the process in.
    await tenant.create_nodeclass(launchDelay="4s")
    process = await tenant.start()
    pool = tenant.pool_from_example("restart")
    pool_name = pool["metadata"]["name"]
    await tenant.create_pool(pool)
    await tenant.deployment("inflate", 5)
    expected = _cheapest_packing(["c5.large", "m5.large", "m5.xlarge"], pods=5, cpu_millis=1000)

    async def batch_created() -> list[JSON] | None:
        claims = await tenant.claims(pool_name)
        return claims if len(claims) == 3 else None

    before = await eventually(batch_created, within=60, what="the batch's 3 NodeClaims")
    nodes_at_kill = await tenant.nodes(pool_name)
    process.kill()
    assert len(nodes_at_kill) < 3, "the kill came after every launch finished"
    launched = [c for c in before if c.get("status", {}).get("providerID")]
    assert len(launched) < 3

    await tenant.start()  # waits for the lease the killed process held to expire
    await tenant.running("inflate", 5)
    claims = await tenant.claims(pool_name)
    nodes = await tenant.nodes(pool_name)
    names = {c["metadata"]["name"] for c in before}
    assert {c["metadata"]["name"] for c in claims} == names
    assert {n["metadata"]["name"] for n in nodes} == names
    assert _cost(nodes) == pytest.approx(expected)


# --- the shipped manifests ------------------------------------------------------------------


def test_provisioner_manifests_and_the_example_apply(crds: ControlPlane, tmp_path: Path) -> None:
    """manifests/provisioner (CRDs, RBAC, Deployment) and examples/nodepool-basic.yaml are
    accepted by the real apiserver (server-side dry run; the namespace for real)."""
    _kubectl(crds, "apply", "--server-side", "-f", str(REPO / "manifests/base/namespace.yaml"))
    rendered = _kubectl(crds, "kustomize", str(REPO / "manifests" / "provisioner"))
    kinds = {doc["kind"] for doc in yaml.safe_load_all(rendered) if doc}
    assert {"Deployment", "ClusterRole", "Role", "CustomResourceDefinition"} <= kinds
    path = tmp_path / "provisioner.yaml"
    path.write_text(rendered)
    _kubectl(crds, "apply", "--server-side", "--dry-run=server", "-f", str(path))
    _kubectl(crds, "apply", "--server-side", "--dry-run=server", "-f", str(EXAMPLE))


# --- termination: a deleted NodeClaim's node is drained before it goes ----------------------

DISRUPTED = "updraft.io/disrupted"
PDBS = Resource("policy", "v1", "poddisruptionbudgets", namespaced=True)


def _condition(obj: JSON, kind: str) -> JSON | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


async def _gone(api: Api, resource: Resource, name: str) -> bool:
    try:
        await api.get(resource, name)
    except NotFoundError:
        return True
    return False


async def _claim_and_node_gone(tenant: Tenant, claim: str, node: str) -> None:
    async def gone() -> bool | None:
        both = await _gone(tenant.api, NODECLAIMS, claim) and await _gone(tenant.api, NODES, node)
        return True if both else None

    await eventually(gone, within=90, what=f"NodeClaim {claim} and node {node} gone")


async def _claim_events(tenant: Tenant, claim: str, reason: str) -> list[JSON]:
    items, _ = await tenant.api.list(EVENTS, "default")
    return [
        e
        for e in items
        if e["involvedObject"].get("name") == claim
        and e["involvedObject"].get("kind") == "NodeClaim"
        and e.get("reason") == reason
    ]


async def _start_pool(tenant: Tenant, suffix: str, **template_spec: Any) -> str:
    await tenant.create_nodeclass()
    await tenant.start()
    pool = tenant.pool_from_example(suffix)
    pool["spec"]["template"]["spec"].update(template_spec)
    await tenant.create_pool(pool)
    return str(pool["metadata"]["name"])


async def test_deleting_a_nodeclaim_cordons_and_drains_it_and_no_pod_is_lost(
    tenant: Tenant,
) -> None:
    pool = await _start_pool(tenant, "drain")
    await tenant.deployment("web", 2)
    pods = await tenant.running("web", 2)
    node = pods[0]["spec"]["nodeName"]
    on_node = {p["metadata"]["uid"] for p in pods if p["spec"]["nodeName"] == node}
    claim = next(
        c["metadata"]["name"]
        for c in await tenant.claims(pool)
        if c["status"].get("nodeName") == node
    )
    before = await asyncio.to_thread(_scrape, tenant.metrics_port)
    evicted_before = before.get('updraft_provisioner_evictions_total{result="evicted"}', 0.0)

    # A node that drains at once can be gone before a poll sees its taint: watch it instead,
    # from before the delete, so every version the node passed through is seen.
    start = await tenant.api.get(NODES, node)
    tainted = asyncio.Event()

    async def watch_for_the_taint() -> None:
        version = str(start["metadata"]["resourceVersion"])
        async for event in tenant.api.watch(NODES, resource_version=version, timeout_seconds=60):
            obj = event.get("object") or {}
            if (obj.get("metadata") or {}).get("name") != node:
                continue
            taints = (obj.get("spec") or {}).get("taints") or []
            if any(t["key"] == DISRUPTED and t["effect"] == "NoSchedule" for t in taints):
                tainted.set()
                return

    watcher = asyncio.create_task(watch_for_the_taint())
    try:
        _kubectl(tenant.cp, "delete", "nodeclaim", claim, "--wait=false")
        try:
            await asyncio.wait_for(tainted.wait(), timeout=30)
        except TimeoutError:
            raise AssertionError(f"node {node} never tainted {DISRUPTED} before it went") from None
    finally:
        await cancel_and_wait(watcher)
    await _claim_and_node_gone(tenant, claim, node)
    # Every pod that was on the node was evicted (not lost with the node), and the Deployment
    # is whole again on a node the provisioner launched for the evicted pods.
    after = await tenant.running("web", 2)
    assert not on_node & {p["metadata"]["uid"] for p in after}
    assert all(p["spec"]["nodeName"] != node for p in after)
    metrics = await asyncio.to_thread(_scrape, tenant.metrics_port)
    evicted = metrics['updraft_provisioner_evictions_total{result="evicted"}'] - evicted_before
    assert evicted >= len(on_node)
    assert metrics["updraft_provisioner_drain_duration_seconds_count"] >= 1

    async def ready() -> JSON | None:
        obj = await tenant.api.get(DEPLOYMENTS, "web", tenant.namespace)
        return obj if obj["status"].get("readyReplicas") == 2 else None

    await eventually(ready, within=60, what="the Deployment's 2 replicas ready")


async def test_a_pdb_blocks_the_drain_until_the_termination_grace_period(tenant: Tenant) -> None:
    pool = await _start_pool(tenant, "pdb", terminationGracePeriod="30s")
    await tenant.deployment("guarded", 1)
    (pod,) = await tenant.running("guarded", 1)
    await tenant.pdb_allowing_none("guard", app="guarded")
    node = pod["spec"]["nodeName"]
    (claim,) = [c["metadata"]["name"] for c in await tenant.claims(pool)]
    (claim_obj,) = await tenant.claims(pool)
    assert claim_obj["spec"]["terminationGracePeriod"] == "30s"

    _kubectl(tenant.cp, "delete", "nodeclaim", claim, "--wait=false")

    async def blocked() -> JSON | None:
        events = await _claim_events(tenant, claim, "DisruptionBlocked")
        return events[0] if events else None

    event = await eventually(blocked, within=30, what="a DisruptionBlocked Event")
    name = pod["metadata"]["name"]
    assert f"PodDisruptionBudget {tenant.namespace}/guard" in event["message"]
    assert f"pod {tenant.namespace}/{name}" in event["message"]
    current = await tenant.api.get(PODS, name, tenant.namespace)
    assert current["metadata"]["uid"] == pod["metadata"]["uid"]
    assert current["status"]["phase"] == "Running"

    # The drain posts its Event a moment before it writes the condition.
    async def drain_told() -> JSON | None:
        return _condition(await tenant.api.get(NODECLAIMS, claim), "Drained")

    drained = await eventually(drain_told, within=30, what="the NodeClaim's Drained condition")
    assert drained["status"] == "False"

    # Past the grace period the pod is deleted despite the PDB, and the node goes.
    await _claim_and_node_gone(tenant, claim, node)
    expired = await _claim_events(tenant, claim, "TerminationGracePeriodExpiring")
    assert any(name in e["message"] for e in expired)
    (replacement,) = await tenant.running("guarded", 1)
    assert replacement["metadata"]["uid"] != pod["metadata"]["uid"]


async def test_a_do_not_disrupt_pod_is_waited_for(tenant: Tenant) -> None:
    pool = await _start_pool(tenant, "dnd")
    await tenant.api.create(
        DEPLOYMENTS,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "precious"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "precious"}},
                "template": {
                    "metadata": {
                        "labels": {"app": "precious"},
                        "annotations": {"karpenter.sh/do-not-disrupt": "true"},
                    },
                    "spec": tenant.pod_spec(),
                },
            },
        },
        tenant.namespace,
    )
    (pod,) = await tenant.running("precious", 1)
    node = pod["spec"]["nodeName"]
    (claim,) = [c["metadata"]["name"] for c in await tenant.claims(pool)]
    _kubectl(tenant.cp, "delete", "nodeclaim", claim, "--wait=false")

    async def waiting() -> JSON | None:
        cond = _condition(await tenant.api.get(NODECLAIMS, claim), "Drained")
        ok = cond is not None and cond["status"] == "False" and "do-not-disrupt" in cond["message"]
        return cond if ok else None

    await eventually(waiting, within=30, what="Drained=False waiting for the do-not-disrupt pod")
    events = await _claim_events(tenant, claim, "DisruptionBlocked")
    assert any("do-not-disrupt" in e["message"] for e in events)
    current = await tenant.api.get(PODS, pod["metadata"]["name"], tenant.namespace)
    assert current["metadata"]["uid"] == pod["metadata"]["uid"]
    assert not current["metadata"].get("deletionTimestamp")
    # Once the pod has finished (here: deleted by its owner), the node goes.
    await tenant.scale("precious", 0)
    await _claim_and_node_gone(tenant, claim, node)


async def test_kwok_removes_startup_taints_and_the_claim_is_initialized(tenant: Tenant) -> None:
    startup = {"key": "e2e.updraft.io/agent-not-ready", "effect": "NoSchedule"}
    pool = await _start_pool(tenant, "startup", startupTaints=[startup])
    await tenant.deployment("app", 1)
    (pod,) = await tenant.running("app", 1)

    async def initialized() -> JSON | None:
        (claim,) = await tenant.claims(pool)
        cond = _condition(claim, "Initialized")
        return claim if cond is not None and cond["status"] == "True" else None

    claim = await eventually(initialized, within=60, what="the NodeClaim Initialized")
    assert claim["spec"]["startupTaints"] == [startup]
    node = await tenant.api.get(NODES, pod["spec"]["nodeName"])
    assert startup["key"] not in {t["key"] for t in node["spec"].get("taints") or []}
    assert "updraft.io/termination" in node["metadata"]["finalizers"]


async def test_failed_provisioning_is_kept_current_while_the_pod_waits(tenant: Tenant) -> None:
    tenant.flags.append("--event-repeat-interval=1s")
    await _start_pool(tenant, "waits")
    await tenant.deployment("huge", 1, cpu="64")

    async def refreshed() -> JSON | None:
        pods = await tenant.pods("huge")
        if len(pods) != 1:
            return None
        for event in await tenant.events(pods[0]["metadata"]["name"], "FailedProvisioning"):
            if event.get("count", 1) >= 2 and event["lastTimestamp"] != event["firstTimestamp"]:
                return event
        return None

    event = await eventually(refreshed, within=60, what="FailedProvisioning updated in place")
    assert "no NodePool can run this pod" in event["message"]
    (huge,) = await tenant.pods("huge")
    assert len(await tenant.events(huge["metadata"]["name"], "FailedProvisioning")) == 1


async def test_deleting_a_managed_node_drains_it_through_its_nodeclaim(tenant: Tenant) -> None:
    pool = await _start_pool(tenant, "nodedel")
    await tenant.deployment("api", 1)
    (pod,) = await tenant.running("api", 1)
    node = pod["spec"]["nodeName"]
    (claim,) = [c["metadata"]["name"] for c in await tenant.claims(pool)]

    async def held() -> bool | None:
        obj = await tenant.api.get(NODES, node)
        return True if "updraft.io/termination" in obj["metadata"].get("finalizers", []) else None

    await eventually(held, within=30, what=f"node {node} holding the termination finalizer")
    _kubectl(tenant.cp, "delete", "node", node, "--wait=false")

    async def claim_deleting() -> bool | None:
        try:
            obj = await tenant.api.get(NODECLAIMS, claim)
        except NotFoundError:
            return True
        return True if obj["metadata"].get("deletionTimestamp") else None

    await eventually(claim_deleting, within=30, what=f"NodeClaim {claim} deleted with its node")
    await _claim_and_node_gone(tenant, claim, node)
    (after,) = await tenant.running("api", 1)
    assert after["metadata"]["uid"] != pod["metadata"]["uid"]
    assert after["spec"]["nodeName"] != node


# --- a pass launches every claim at once ----------------------------------------------------


class RecordingApi(Api):
    """The real API, with the order of NodeClaim and Event creates written down."""

    def __init__(self, kube: client.ApiClient) -> None:
        super().__init__(kube)
        self.log: list[tuple[str, str]] = []
        """("claim" | "nominated", "start" | "end"), in the order they happened."""
        self.in_flight = 0
        self.peak = 0

    async def create(self, resource: Resource, obj: JSON, namespace: str | None = None) -> JSON:
        kind = ""
        if resource == NODECLAIMS:
            kind = "claim"
        elif resource == EVENTS and obj.get("reason") == "Nominated":
            kind = "nominated"
        if not kind:
            return await super().create(resource, obj, namespace)
        self.log.append((kind, "start"))
        if kind == "claim":
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            return await super().create(resource, obj, namespace)
        finally:
            if kind == "claim":
                self.in_flight -= 1
            self.log.append((kind, "end"))


async def test_a_pass_creates_every_claim_before_it_tells_the_pods(
    tenant: Tenant, kube: client.ApiClient
) -> None:
    # In-process, so the order of the controller's own API calls can be seen.
    from provisioner.cloud.kwok import KwokProvider
    from provisioner.controllers.manager import ProvisionerController, ProvisionerSettings

    await tenant.create_nodeclass()
    api = RecordingApi(kube)
    settings = ProvisionerSettings(
        batch_idle=1.0,
        batch_max=5.0,
        lease_namespace=tenant.namespace,
        lease_name=tenant.lease,
        identity=f"e2e-{tenant.id}",
    )
    controller = ProvisionerController(api, KwokProvider(api), settings)
    controller.start()
    try:
        pool = tenant.pool_from_example("atonce")
        pool_name = pool["metadata"]["name"]
        await tenant.create_pool(pool)
        await tenant.deployment("inflate", 12)

        async def nominated() -> bool | None:
            done = api.log.count(("nominated", "end"))
            return True if done >= 12 else None

        await eventually(nominated, within=90, what="12 Nominated Events posted")
        claims = await tenant.claims(pool_name)
    finally:
        await controller.close()
    assert len(claims) >= 2, "the pass needed a single claim: nothing to see"
    # Up to the first Nominated Event, the first pass created all its claims, concurrently.
    first_told = api.log.index(("nominated", "start"))
    before = api.log[:first_told]
    made = before.count(("claim", "end"))
    assert made >= 2, f"Events before the pass's claims were all created: {api.log}"
    assert before.count(("claim", "start")) == made
    assert api.peak >= 2, "the claims of a pass were created one at a time"
