"""One Redis list trigger through kube-apiserver: Updraft's adapter vs KEDA's metrics apiserver.

Run as `.venv/bin/python -m bench.keda_vs_adapter`; prints one JSON object. Starts its own test
control plane (tests/cluster, in a temporary state directory), a Redis (the integration
tests' helper), `updraft serve` and KEDA v2.21.0's operator and metrics apiserver (the KEDA e2e
tier's helpers; `make setup` builds KEDA). The same list, `jobs` holding 25 items, is one
Updraft MetricSource and one KEDA ScaledObject with KEDA's own redis trigger (same address,
listName, listLength and password). Only one APIService may own external.metrics.k8s.io, so
rounds alternate between the two owners (Updraft, KEDA, Updraft, KEDA, ...), the APIService
re-pointed and Available before each; in each round 50 concurrent readers GET the metric
through kube-apiserver, as the HPA does. Reported per owner: p50/p99 latency, reads, errors,
and the Redis commands the round cost (`INFO commandstats`, INFO itself left out), next to
their ratio. KEDA's background work is kept out of the count: the ScaledObject polls every
300 s and its activation threshold is out of reach, so its Deployment stays at 0 and its HPA
asks nothing. Request counts are fixed; nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import ssl
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import redis.asyncio as aioredis
import yaml

from bench.cache_fanin import percentiles
from tests.cluster.controlplane import ControlPlane, running
from tests.e2e.keda.conftest import (
    KEDA_NAMESPACE,
    SYSTEM,
    Keda,
    Updraft,
    apiservice_available,
    apply,
    keda_dir,
    kubectl,
    register_external,
    running_keda,
    running_updraft,
)
from tests.integration.queues.servers import REDIS_PASSWORD, start_redis, stop_server
from tests.servers import ServerProcess

NAMESPACE = "bench"
LIST = "jobs"
DEPTH = 25
KEDA_METRIC = f"s0-redis-{LIST}"
"""KEDA's name for trigger 0 of a redis scaler on `jobs`."""
NOT_UPSTREAM = {"info", "auth", "hello", "ping", "client", "select", "command"}
"""Connection chatter and this benchmark's own INFO: not queries of the list."""


@dataclass(frozen=True)
class Owner:
    name: str
    namespace: str
    service: str
    port: int
    ca: Path
    path: str


def objects(redis_port: int) -> list[dict[str, Any]]:
    """The one list, as Updraft's MetricSource and as KEDA's ScaledObject."""
    address = f"127.0.0.1:{redis_port}"
    labels = {"app": "bench-target"}
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "redis"},
            "stringData": {"password": REDIS_PASSWORD},
        },
        {
            "apiVersion": "updraft.io/v1alpha1",
            "kind": "MetricSource",
            "metadata": {"name": LIST},
            "spec": {
                "trigger": {
                    "type": "redis",
                    "metadata": {"address": address, "listName": LIST, "listLength": "5"},
                    "authRef": {"name": "redis"},
                }
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "bench-target"},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]},
                },
            },
        },
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "TriggerAuthentication",
            "metadata": {"name": "redis"},
            "spec": {
                "secretTargetRef": [{"parameter": "password", "name": "redis", "key": "password"}]
            },
        },
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": LIST},
            "spec": {
                "scaleTargetRef": {"name": "bench-target"},
                "minReplicaCount": 0,
                "pollingInterval": 300,
                "triggers": [
                    {
                        "type": "redis",
                        "authenticationRef": {"name": "redis"},
                        "metadata": {
                            "address": address,
                            "listName": LIST,
                            "listLength": "5",
                            "activationListLength": "1000000000",
                        },
                    }
                ],
            },
        },
    ]


def admin_ssl(cp: ControlPlane) -> ssl.SSLContext:
    config = yaml.safe_load(cp.kubeconfig.read_text())
    (cluster,) = config["clusters"]
    (user,) = config["users"]
    context = ssl.create_default_context(cafile=cluster["cluster"]["certificate-authority"])
    context.load_cert_chain(user["user"]["client-certificate"], user["user"]["client-key"])
    return context


async def upstream_calls(client: aioredis.Redis) -> Counter[str]:
    stats = await client.info("commandstats")
    calls: Counter[str] = Counter()
    for key, value in stats.items():
        command = str(key).removeprefix("cmdstat_")
        if command.split("|")[0] not in NOT_UPSTREAM:
            calls[command] = int(value["calls"])
    return calls


async def read_round(
    session: aiohttp.ClientSession, url: str, *, reads: int, readers: int
) -> tuple[list[int], Counter[str]]:
    samples: list[int] = []
    errors: Counter[str] = Counter()
    remaining = reads

    async def reader() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter_ns()
            try:
                async with session.get(url) as response:
                    body = await response.read()
                    if response.status != 200:
                        errors[f"HTTP {response.status}"] += 1
                        continue
            except (aiohttp.ClientError, TimeoutError) as error:
                errors[type(error).__name__] += 1
                continue
            samples.append(time.perf_counter_ns() - started)
            if orjson.loads(body)["items"][0]["value"] != str(DEPTH):
                errors["wrong value"] += 1

    await asyncio.gather(*(reader() for _ in range(readers)))
    return samples, errors


async def served(session: aiohttp.ClientSession, url: str, *, within: float) -> None:
    """The first 200 with the list's depth: the aggregator routes to the new owner."""
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.get(url) as response:
                if response.status == 200:
                    items = orjson.loads(await response.read())["items"]
                    if items and items[0]["value"] == str(DEPTH):
                        return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not served within {within:g} s")
        await asyncio.sleep(0.25)  # polling: the next GET decides


def own_external(cp: ControlPlane, work: Path, owner: Owner) -> None:
    register_external(
        cp, work, namespace=owner.namespace, service=owner.service, port=owner.port, ca=owner.ca
    )
    deadline = time.monotonic() + 90
    while not apiservice_available(cp):
        if time.monotonic() > deadline:
            raise RuntimeError(f"external.metrics.k8s.io not Available on {owner.name}")
        time.sleep(0.25)  # polling


async def measure(
    cp: ControlPlane,
    work: Path,
    owners: list[Owner],
    redis: aioredis.Redis,
    *,
    rounds: int,
    reads: int,
    readers: int,
    warmup: int,
) -> dict[str, Any]:
    base = cp.apiserver_url()
    latency: dict[str, list[int]] = {o.name: [] for o in owners}
    errors: dict[str, Counter[str]] = {o.name: Counter() for o in owners}
    upstream: dict[str, Counter[str]] = {o.name: Counter() for o in owners}
    seconds: dict[str, float] = dict.fromkeys(latency, 0.0)
    connector = aiohttp.TCPConnector(ssl=admin_ssl(cp), limit=readers)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        for index in range(rounds * len(owners)):
            owner = owners[index % len(owners)]
            url = base + owner.path
            await asyncio.to_thread(own_external, cp, work, owner)
            await served(session, url, within=60)
            await read_round(session, url, reads=warmup, readers=readers)
            before = await upstream_calls(redis)
            started = time.perf_counter()
            samples, failed = await read_round(session, url, reads=reads, readers=readers)
            seconds[owner.name] += time.perf_counter() - started
            upstream[owner.name] += (await upstream_calls(redis)) - before
            latency[owner.name] += samples
            errors[owner.name] += failed
            p50_ms = percentiles(samples)["p50_us"] / 1000
            print(
                f"round {index + 1}: {owner.name} p50 {p50_ms:.1f} ms, {failed.total()} errors",
                file=sys.stderr,
                flush=True,
            )
    result: dict[str, Any] = {}
    for o in owners:
        reads_done = len(latency[o.name])
        result[o.name] = {
            "latency": {
                k: round(v / 1000, 2) if k != "n" else v
                for k, v in percentiles(latency[o.name]).items()
            },
            "reads": reads_done,
            "reads_per_second": round(reads_done / seconds[o.name], 1) if seconds[o.name] else 0.0,
            "errors": dict(errors[o.name]),
            "upstream_commands": sum(upstream[o.name].values()),
            "upstream_by_command": dict(upstream[o.name]),
            "upstream_per_1000_reads": round(
                1000 * sum(upstream[o.name].values()) / max(1, reads_done), 2
            ),
        }
    return result


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[ServerProcess]:
    server = start_redis(directory)
    try:
        yield server
    finally:
        stop_server(server)


async def fill(port: int) -> aioredis.Redis:
    client = aioredis.Redis(host="127.0.0.1", port=port, password=REDIS_PASSWORD)
    await client.delete(LIST)
    await client.rpush(LIST, *(f"job-{i}" for i in range(DEPTH)))
    return client


def ready(cp: ControlPlane) -> None:
    """The MetricSource Ready and the ScaledObject's HPA made: both owners can answer."""
    deadline = time.monotonic() + 120
    while True:
        source = orjson.loads(
            kubectl(cp, "-n", NAMESPACE, "get", f"metricsource/{LIST}", "-o", "json")
        )
        scaled = orjson.loads(
            kubectl(cp, "-n", NAMESPACE, "get", f"scaledobject/{LIST}", "-o", "json")
        )
        conditions = (source.get("status") or {}).get("conditions") or []
        source_ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        keda_ready = KEDA_METRIC in ((scaled.get("status") or {}).get("externalMetricNames") or [])
        if source_ready and keda_ready:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"not ready: MetricSource {conditions}, ScaledObject {scaled.get('status')}"
            )
        time.sleep(0.25)  # polling


async def run(*, rounds: int, reads: int, readers: int, warmup: int) -> dict[str, Any]:
    binaries = keda_dir()
    if not (binaries / "keda-operator").is_file():
        raise SystemExit(f"bench.keda_vs_adapter: KEDA is not built in {binaries}: run make setup")
    with tempfile.TemporaryDirectory(prefix="updraft-bench-keda-") as root:
        work = Path(root)
        with (
            running(work / "cluster") as cp,
            redis_server(work / "redis") as redis,
            running_updraft(cp, work / "updraft") as updraft,
            running_keda(cp, binaries, work / "keda") as keda,
        ):
            client = await fill(redis.port)
            try:
                kubectl(cp, "create", "namespace", NAMESPACE)
                apply(cp, work, "bench-objects", objects(redis.port), namespace=NAMESPACE)
                await asyncio.to_thread(ready, cp)
                owners = owners_of(updraft, keda)
                result = await measure(
                    cp,
                    work,
                    owners,
                    client,
                    rounds=rounds,
                    reads=reads,
                    readers=readers,
                    warmup=warmup,
                )
            finally:
                await client.aclose()
    updraft_side, keda_side = result["updraft"], result["keda"]
    return {
        "bench": "keda_vs_adapter",
        "trigger": {"type": "redis", "listName": LIST, "depth": DEPTH, "listLength": 5},
        "path": "GET through kube-apiserver (aggregated external.metrics.k8s.io), as the HPA reads",
        "readers": readers,
        "rounds_per_owner": rounds,
        "reads_per_round": reads,
        "owners": result,
        "ratio_keda_over_updraft": {
            "p50": ratio(keda_side["latency"]["p50_us"], updraft_side["latency"]["p50_us"]),
            "p99": ratio(keda_side["latency"]["p99_us"], updraft_side["latency"]["p99_us"]),
            "reads_per_second": ratio(
                keda_side["reads_per_second"], updraft_side["reads_per_second"]
            ),
            "upstream_commands": ratio(
                keda_side["upstream_commands"], updraft_side["upstream_commands"]
            ),
        },
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }


def owners_of(updraft: Updraft, keda: Keda) -> list[Owner]:
    return [
        Owner(
            "updraft",
            SYSTEM,
            "updraft",
            updraft.secure_port,
            updraft.ca,
            f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/{LIST}",
        ),
        Owner(
            "keda",
            KEDA_NAMESPACE,
            "keda-metrics-apiserver",
            keda.adapter.port,
            keda.work / "certs" / "ca.crt",
            f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/{KEDA_METRIC}"
            f"?labelSelector=scaledobject.keda.sh%2Fname%3D{LIST}",
        ),
    ]


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=2, help="rounds per owner, alternating")
    parser.add_argument("--reads", type=int, default=1500, help="GETs per round")
    parser.add_argument("--readers", type=int, default=50, help="concurrent readers")
    parser.add_argument("--warmup", type=int, default=100, help="GETs before each round")
    options = parser.parse_args()
    result = asyncio.run(
        run(
            rounds=max(1, min(options.rounds, 10)),
            reads=max(1, min(options.reads, 20000)),
            readers=max(1, min(options.readers, 200)),
            warmup=max(0, min(options.warmup, 1000)),
        )
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
