"""KEDA v2.21.0 scaling real workloads through Updraft's gRPC door: each scenario reaches its
working state through KEDA itself (the ScaledObject's conditions, the HPA KEDA creates, the
Deployment's replicas), against Redis servers on loopback.

- `external` redis: N items scale to ceil(N/listLength), draining scales to 0;
- `external-push`: StreamIsActive activates 0 -> 1 while KEDA's next poll is minutes away;
- `metricSourceRef`: a MetricSource in the cluster (auth from its Secret) is the trigger;
- ten ScaledObjects on one trigger: Updraft's /metrics shows one upstream query per interval.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from kubernetes_asyncio import client
from prometheus_client.parser import text_string_to_metric_families

from kube import SECRETS, Api, Resource
from scalers import TriggerPolicy
from tests.cluster.controlplane import ControlPlane
from tests.e2e.keda.conftest import Keda, Updraft, apply
from tests.e2e.keda.test_keda_client import deployment, scaled_object, tls_auth
from tests.e2e.waiting import eventually
from tests.integration.queues.servers import REDIS_PASSWORD, start_redis, stop_server
from tests.servers import ServerProcess

pytestmark = pytest.mark.usefixtures("keda")

SCALED_OBJECTS = Resource("keda.sh", "v1alpha1", "scaledobjects", namespaced=True)
HPAS = Resource("autoscaling", "v2", "horizontalpodautoscalers", namespaced=True)
DEPLOYMENTS = Resource("apps", "v1", "deployments", namespaced=True)
METRICSOURCES = Resource("updraft.io", "v1alpha1", "metricsources", namespaced=True)

UPDRAFT_INTERVAL = TriggerPolicy().polling_interval
"""Seconds Updraft keeps an inline trigger's value: KEDA sends it no pollingInterval."""


@pytest.fixture(scope="module")
def open_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A Redis without a password: an inline `external` trigger can carry no secret (KEDA
    forwards no TriggerAuthentication values, and Updraft refuses a password in metadata)."""
    server = start_redis(tmp_path_factory.mktemp("redis-open"), name="redis-open", password=None)
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def auth_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A Redis with a password, which only a MetricSource's authRef can give Updraft."""
    server = start_redis(tmp_path_factory.mktemp("redis-auth"), name="redis-auth")
    yield server
    stop_server(server)


@pytest.fixture
async def queue(open_redis: ServerProcess) -> AsyncIterator[aioredis.Redis]:
    r = aioredis.Redis(port=open_redis.port)
    yield r
    await r.aclose()


@dataclass
class Scene:
    """One test's namespace in the cluster KEDA and Updraft serve, and how to watch it."""

    cp: ControlPlane
    updraft: Updraft
    keda: Keda
    api: Api
    namespace: str

    async def create(self, items: list[dict[str, Any]]) -> None:
        """`kubectl apply` the objects, with the shipped example's TLS TriggerAuthentication."""
        items = [*tls_auth(self.updraft), *items]
        work, ns = self.keda.work, self.namespace
        await asyncio.to_thread(apply, self.cp, work, ns, items, namespace=ns)

    async def scaled_to(self, name: str, count: int, *, within: float) -> None:
        """Wait for the Deployment at `count` replicas, set by KEDA (0 <-> 1) and its HPA."""

        async def there() -> bool | None:
            got = await self.api.get(DEPLOYMENTS, name, self.namespace)
            return True if got["spec"].get("replicas", 1) == count else None

        await eventually(there, within=within, what=f"{name} at {count} replicas")

    async def so_condition(
        self, name: str, kind: str, status: str, *, within: float
    ) -> dict[str, Any]:
        """The ScaledObject once its condition `kind` has `status`."""
        return await self._scaled_object_until(
            name,
            lambda obj: condition(obj, kind) == status,
            within=within,
            what=f"ScaledObject {name} {kind}={status}",
        )

    async def checked_inactive(self, name: str, *, within: float) -> dict[str, Any]:
        """The ScaledObject once KEDA's scale loop has found every trigger inactive."""

        def inactive(obj: dict[str, Any]) -> bool:
            activity = (obj.get("status") or {}).get("triggersActivity") or {}
            if activity and not any(a.get("isActive") for a in activity.values()):
                return True
            return condition(obj, "Active") == "False"

        return await self._scaled_object_until(
            name, inactive, within=within, what=f"KEDA's first check of {name}"
        )

    async def _scaled_object_until(
        self,
        name: str,
        holds: Callable[[dict[str, Any]], bool],
        *,
        within: float,
        what: str,
    ) -> dict[str, Any]:
        """The ScaledObject once `holds`; a timeout shows its last status."""
        seen: dict[str, Any] = {}

        async def check() -> dict[str, Any] | None:
            obj = await self.api.get(SCALED_OBJECTS, name, self.namespace)
            seen["status"] = obj.get("status")
            return obj if holds(obj) else None

        try:
            return await eventually(check, within=within, what=what)
        except AssertionError as e:
            raise AssertionError(f"{e}; its status: {seen.get('status')}") from None

    async def keda_hpa(self, name: str) -> dict[str, Any]:
        """The HPA KEDA made for ScaledObject `name`, once it reads its metric."""

        async def reading() -> dict[str, Any] | None:
            hpa = await self.api.get(HPAS, f"keda-hpa-{name}", self.namespace)
            return hpa if condition(hpa, "ScalingActive") == "True" else None

        return await eventually(reading, within=60, what=f"keda-hpa-{name} ScalingActive")


@pytest.fixture
def scene(
    control_plane: ControlPlane,
    updraft: Updraft,
    keda: Keda,
    kube: client.ApiClient,
    namespace: str,
) -> Scene:
    return Scene(control_plane, updraft, keda, Api(kube), namespace)


def redis_trigger(
    updraft: Updraft, server: ServerProcess, list_name: str, **more: str
) -> dict[str, str]:
    return {
        "scalerAddress": updraft.address,
        "enableTLS": "true",
        "scalerType": "redis",
        "address": f"127.0.0.1:{server.port}",
        "listName": list_name,
        **more,
    }


def condition(obj: dict[str, Any], kind: str) -> str | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return str(c.get("status"))
    return None


def external_metric(hpa: dict[str, Any]) -> tuple[str, str]:
    """(metric name, averageValue target) of the HPA's one External metric."""
    [metric] = hpa["spec"]["metrics"]
    assert metric["type"] == "External"
    external = metric["external"]
    return external["metric"]["name"], str(external["target"]["averageValue"])


async def test_redis_list_scales_to_items_over_list_length_and_drains_to_zero(
    scene: Scene, open_redis: ServerProcess, queue: aioredis.Redis
) -> None:
    jobs, items, per_replica = f"{scene.namespace}-jobs", 7, 3
    await queue.rpush(jobs, *[f"job-{i}" for i in range(items)])
    trigger = redis_trigger(scene.updraft, open_redis, jobs, listLength=str(per_replica))
    await scene.create([deployment("worker"), scaled_object("worker", trigger)])

    await scene.scaled_to("worker", math.ceil(items / per_replica), within=120)
    so = await scene.so_condition("worker", "Active", "True", within=10)
    assert condition(so, "Ready") == "True"
    assert so["status"]["externalMetricNames"] == [f"s0-redis-{jobs}"]
    hpa = await scene.keda_hpa("worker")
    assert external_metric(hpa) == (f"s0-redis-{jobs}", str(per_replica))

    await queue.delete(jobs)
    # Updraft's cached depth lives one interval, then KEDA's poll sees it and the cooldown runs.
    await scene.scaled_to("worker", 0, within=UPDRAFT_INTERVAL + 90)
    await scene.so_condition("worker", "Active", "False", within=10)


async def test_push_activates_long_before_kedas_next_poll(
    scene: Scene, open_redis: ServerProcess, queue: aioredis.Redis
) -> None:
    jobs = f"{scene.namespace}-pushed"
    polling = 600
    trigger = redis_trigger(scene.updraft, open_redis, jobs)
    so = scaled_object("pushed", trigger, kind="external-push", pollingInterval=polling)
    await scene.create([deployment("pushed"), so])
    # KEDA's scale loop checks once when it starts, then every pollingInterval: once it has
    # found the empty list inactive, its next look by polling is 600 s away. That first check
    # shows in status.triggersActivity; the Active condition may stay Unknown after it while
    # the Deployment is already at 0 (seen once), so either one is the sign.
    await scene.checked_inactive("pushed", within=120)
    assert (await scene.api.get(DEPLOYMENTS, "pushed", scene.namespace))["spec"]["replicas"] == 0

    await queue.rpush(jobs, "job")
    # Updraft's stream re-reads the trigger every interval and pushes the change; a bound far
    # below KEDA's 600 s shows the activation came through the stream, not a poll.
    bound = UPDRAFT_INTERVAL + 60
    assert bound < polling / 4
    await scene.scaled_to("pushed", 1, within=bound)
    await scene.so_condition("pushed", "Active", "True", within=10)


async def test_metric_source_ref_scales_on_a_metricsource_in_the_cluster(
    scene: Scene, auth_redis: ServerProcess
) -> None:
    jobs, items, per_replica = "orders", 5, 2
    r = aioredis.Redis(port=auth_redis.port, password=REDIS_PASSWORD)
    try:
        await r.delete(jobs)
        await r.rpush(jobs, *[f"order-{i}" for i in range(items)])
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "orders-redis"},
            "stringData": {"password": REDIS_PASSWORD},
        }
        await scene.api.create(SECRETS, secret, scene.namespace)
        source = {
            "apiVersion": "updraft.io/v1alpha1",
            "kind": "MetricSource",
            "metadata": {"name": "orders-depth"},
            "spec": {
                "pollingInterval": 5,
                "trigger": {
                    "type": "redis",
                    "metadata": {
                        "address": f"127.0.0.1:{auth_redis.port}",
                        "listName": jobs,
                        "listLength": str(per_replica),
                    },
                    "authRef": {"name": "orders-redis"},
                },
            },
        }
        await scene.api.create(METRICSOURCES, source, scene.namespace)
        trigger = {
            "scalerAddress": scene.updraft.address,
            "enableTLS": "true",
            "metricSourceRef": "orders-depth",
        }
        await scene.create([deployment("orders"), scaled_object("orders", trigger)])

        await scene.scaled_to("orders", math.ceil(items / per_replica), within=120)
        so = await scene.so_condition("orders", "Active", "True", within=10)
        # Named by the MetricSource, as the metrics API names it.
        assert so["status"]["externalMetricNames"] == ["s0-orders-depth"]
        hpa = await scene.keda_hpa("orders")
        assert external_metric(hpa) == ("s0-orders-depth", str(per_replica))

        await r.delete(jobs)
        await scene.scaled_to("orders", 0, within=90)
    finally:
        await r.aclose()


async def trigger_counters(updraft: Updraft, trigger_prefix: str) -> tuple[str, dict[str, float]]:
    """(label, {series: value}) of the one trigger whose label starts with `trigger_prefix`."""
    url = f"http://127.0.0.1:{updraft.metrics_port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        text = await response.text()
    found: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            label = s.labels.get("trigger", "")
            if s.name.startswith("updraft_scaler_trigger_") and label.startswith(trigger_prefix):
                found.setdefault(label, {})[s.name] = s.value
    assert len(found) == 1, f"one trigger {trigger_prefix}@..., found {sorted(found)}"
    [(label, values)] = found.items()
    return label, values


async def test_many_scaled_objects_on_one_trigger_query_upstream_once_per_interval(
    scene: Scene, open_redis: ServerProcess, queue: aioredis.Redis
) -> None:
    jobs, fan_in = f"{scene.namespace}-shared", 10
    await queue.rpush(jobs, *[f"job-{i}" for i in range(4)])
    trigger = redis_trigger(scene.updraft, open_redis, jobs, listLength="2")
    names = [f"consumer-{i}" for i in range(fan_in)]
    objects: list[dict[str, Any]] = []
    for name in names:
        objects += [deployment(name), scaled_object(name, trigger)]
    await scene.create(objects)
    for name in names:
        await scene.scaled_to(name, 2, within=150)

    calls, asks = "updraft_scaler_trigger_upstream_calls_total", "updraft_scaler_trigger_asks_total"
    loop = asyncio.get_running_loop()
    started = loop.time()  # before the first read, so the window holds every query it counts
    label, before = await trigger_counters(scene.updraft, f"redis-{jobs}@")

    async def two_more_queries() -> dict[str, float] | None:
        _, now = await trigger_counters(scene.updraft, f"redis-{jobs}@")
        return now if now[calls] - before[calls] >= 2 else None

    # Two upstream queries: the window spans at least one of Updraft's intervals in full.
    after = await eventually(two_more_queries, within=3 * UPDRAFT_INTERVAL + 30, what="2 queries")
    elapsed = loop.time() - started
    queried = after[calls] - before[calls]
    asked = after[asks] - before[asks]
    # Ten KEDA pollers (every 5 s) and ten HPAs asked all along, through one cached trigger:
    # at most one query per interval started in the window, not one per ScaledObject.
    assert queried <= 1 + elapsed / UPDRAFT_INTERVAL, (label, queried, elapsed)
    assert asked >= fan_in * queried, (label, asked, queried)
    assert after.get("updraft_scaler_trigger_upstream_errors_total", 0) == 0
