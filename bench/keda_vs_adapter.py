"""One Redis list trigger through kube-apiserver: Updraft's adapter vs KEDA's metrics apiserver.

Run as `.venv/bin/python -m bench.keda_vs_adapter`; prints one JSON object. Starts its own test
control plane (tests/cluster, in a temporary state directory), Redis (the integration tests'
helper), `updraft serve` and KEDA v2.21.0's operator and metrics apiserver (the KEDA e2e
tier's helpers; `make setup` builds KEDA). The same list, `jobs` holding 25 items (in one Redis
per owner, so each one's commands are counted apart from the others' polls), is one
Updraft MetricSource (pollingInterval 5 s) and two ScaledObjects with KEDA's own redis trigger
(same listName, listLength and password): `keda`, KEDA's default, where every read
asks Redis, and `keda-cached`, `useCachedMetrics: true` with a 5 s pollingInterval, where
reads come from the operator's poll. Neither ScaledObject can activate, so their Deployments
stay at 0 and their HPAs ask nothing; the default one polls every 300 s, outside the count.

Only one APIService may own external.metrics.k8s.io, so rounds alternate between the owners
(updraft, keda, keda-cached, updraft, ...), the APIService re-pointed and Available before
each, so drift from other load on the machine hits all alike. In each round 50 concurrent
readers GET the metric through kube-apiserver, as the HPA does. Reported per owner: p50/p99
latency, reads per second, errors and the Redis commands the rounds cost (`INFO
commandstats`, INFO itself left out; a script's inner commands count too, so KEDA's one EVAL
shows as eval + type + llen), and the connections kube-apiserver closed to the backend
(TIME-WAIT sockets; each new one cost a TLS handshake), with ratios over Updraft's. Request
counts are fixed; nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import ssl
import subprocess
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
    established,
    keda_dir,
    kubectl,
    register_external,
    running_keda,
    running_updraft,
)
from tests.e2e.keda.test_keda_client import deployment
from tests.integration.queues.servers import REDIS_PASSWORD, start_redis, stop_server
from tests.servers import ServerProcess

NAMESPACE = "bench"
LIST = "jobs"
DEPTH = 25
KEDA_METRIC = f"s0-redis-{LIST}"
"""KEDA's name for trigger 0 of a redis scaler on `jobs`."""
POLLING = 5
"""Seconds: Updraft's MetricSource interval and the cached ScaledObject's, so a round of
several seconds shows what "one query per interval" costs."""
OWNERS = ("updraft", "keda", "keda-cached")
KEDA_LIVE = "jobs-live"
KEDA_CACHED = "jobs-cached"
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


def scaled_object(name: str, address: str, *, polling: int, cached: bool) -> dict[str, Any]:
    """KEDA's own redis scaler on the list, owning the Deployment `name` (one ScaledObject
    per workload); never active, so the Deployment stays at 0 and its HPA never asks."""
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"name": name},
            "minReplicaCount": 0,
            "pollingInterval": polling,
            "triggers": [
                {
                    "type": "redis",
                    "authenticationRef": {"name": "redis"},
                    "useCachedMetrics": cached,
                    "metadata": {
                        "address": address,
                        "listName": LIST,
                        "listLength": "5",
                        "activationListLength": "1000000000",
                    },
                }
            ],
        },
    }


def objects(redis_ports: dict[str, int]) -> list[dict[str, Any]]:
    """The one list as Updraft's MetricSource and as two KEDA ScaledObjects: KEDA's default
    (each read queries Redis; its own poll every 300 s stays out of the count) and with
    `useCachedMetrics` (reads come from the operator's poll, every POLLING s like Updraft's)."""
    address = {name: f"127.0.0.1:{port}" for name, port in redis_ports.items()}
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
                    "metadata": {
                        "address": address["updraft"],
                        "listName": LIST,
                        "listLength": "5",
                    },
                    "authRef": {"name": "redis"},
                },
                "pollingInterval": POLLING,
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
        deployment(KEDA_LIVE),
        scaled_object(KEDA_LIVE, address["keda"], polling=300, cached=False),
        deployment(KEDA_CACHED),
        scaled_object(KEDA_CACHED, address["keda-cached"], polling=POLLING, cached=True),
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


def closed_connections(port: int) -> int:
    """Sockets in TIME-WAIT on loopback `port`: how many connections to the backend were
    closed in the last minute (kube-apiserver reuses a backend connection, or opens a new one
    and pays a TLS handshake)."""
    out = subprocess.run(
        ["ss", "-Htan", "state", "time-wait"], capture_output=True, text=True, check=True
    ).stdout
    return sum(1 for line in out.splitlines() if f":{port} " in f"{line} ")


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
    redis: dict[str, aioredis.Redis],
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
    churn: dict[str, int] = dict.fromkeys(latency, 0)
    connector = aiohttp.TCPConnector(ssl=admin_ssl(cp), limit=readers)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        for index in range(rounds * len(owners)):
            owner = owners[index % len(owners)]
            url = base + owner.path
            await asyncio.to_thread(own_external, cp, work, owner)
            await served(session, url, within=60)
            await read_round(session, url, reads=warmup, readers=readers)
            before = await upstream_calls(redis[owner.name])
            closed_before = closed_connections(owner.port)
            started = time.perf_counter()
            samples, failed = await read_round(session, url, reads=reads, readers=readers)
            seconds[owner.name] += time.perf_counter() - started
            upstream[owner.name] += (await upstream_calls(redis[owner.name])) - before
            churn[owner.name] += max(0, closed_connections(owner.port) - closed_before)
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
        spent = seconds[o.name]
        commands = upstream[o.name].total()
        quantiles = percentiles(latency[o.name])
        result[o.name] = {
            "p50_ms": round(quantiles["p50_us"] / 1000, 2),
            "p99_ms": round(quantiles["p99_us"] / 1000, 2),
            "reads": reads_done,
            "seconds": round(spent, 2),
            "reads_per_second": round(reads_done / spent, 1) if spent else 0.0,
            "errors": dict(errors[o.name]),
            "upstream_commands": commands,
            "upstream_by_command": dict(upstream[o.name]),
            "upstream_commands_per_second": round(commands / spent, 2) if spent else 0.0,
            "upstream_commands_per_1000_reads": round(1000 * commands / max(1, reads_done), 2),
            "backend_connections_closed": churn[o.name],
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
    """The MetricSource Ready and each ScaledObject's HPA made: every owner can answer."""
    deadline = time.monotonic() + 120
    while True:
        source = orjson.loads(
            kubectl(cp, "-n", NAMESPACE, "get", f"metricsource/{LIST}", "-o", "json")
        )
        conditions = (source.get("status") or {}).get("conditions") or []
        waiting: list[str] = []
        if not any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            waiting.append(f"MetricSource {LIST} Ready")
        for name in (KEDA_LIVE, KEDA_CACHED):
            scaled = orjson.loads(
                kubectl(cp, "-n", NAMESPACE, "get", f"scaledobject/{name}", "-o", "json")
            )
            if KEDA_METRIC not in (scaled.get("status") or {}).get("externalMetricNames", []):
                waiting.append(f"ScaledObject {name}")
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready after 120 s: {waiting}")
        time.sleep(0.25)  # polling


async def run(*, rounds: int, reads: int, readers: int, warmup: int) -> dict[str, Any]:
    binaries = keda_dir()
    if not (binaries / "keda-operator").is_file():
        raise SystemExit(f"bench.keda_vs_adapter: KEDA is not built in {binaries}: run make setup")
    with tempfile.TemporaryDirectory(prefix="updraft-bench-keda-") as root:
        work = Path(root)
        with contextlib.ExitStack() as stack:
            cp = stack.enter_context(running(work / "cluster"))
            # One Redis per owner, holding the same list: each one's commands are its own,
            # not the other owners' background polls.
            redis = {
                name: stack.enter_context(redis_server(work / f"redis-{name}")) for name in OWNERS
            }
            updraft = stack.enter_context(running_updraft(cp, work / "updraft"))
            keda = stack.enter_context(running_keda(cp, binaries, work / "keda"))
            clients = {name: await fill(server.port) for name, server in redis.items()}
            try:
                kubectl(cp, "create", "namespace", NAMESPACE)
                established(cp, "crd/metricsources.updraft.io")
                ports = {name: server.port for name, server in redis.items()}
                apply(cp, work, "bench-objects", objects(ports), namespace=NAMESPACE)
                await asyncio.to_thread(ready, cp)
                result = await measure(
                    cp,
                    work,
                    owners_of(updraft, keda),
                    clients,
                    rounds=rounds,
                    reads=reads,
                    readers=readers,
                    warmup=warmup,
                )
            finally:
                for client in clients.values():
                    await client.aclose()
    updraft_side = result["updraft"]
    return {
        "bench": "keda_vs_adapter",
        "trigger": {"type": "redis", "listName": LIST, "depth": DEPTH, "listLength": 5},
        "path": "GET through kube-apiserver (aggregated external.metrics.k8s.io), as the HPA reads",
        "readers": readers,
        "rounds_per_owner": rounds,
        "reads_per_round": reads,
        "owners": result,
        "polling_interval_s": POLLING,
        "ratio_over_updraft": {
            name: {
                key: ratio(side[key], updraft_side[key])
                for key in ("p50_ms", "p99_ms", "reads_per_second", "upstream_commands")
            }
            for name, side in result.items()
            if name != "updraft"
        },
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }


def owners_of(updraft: Updraft, keda: Keda) -> list[Owner]:
    external = f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}"
    keda_ca = keda.work / "certs" / "ca.crt"
    return [
        Owner("updraft", SYSTEM, "updraft", updraft.secure_port, updraft.ca, f"{external}/{LIST}"),
        *(
            Owner(
                name,
                KEDA_NAMESPACE,
                "keda-metrics-apiserver",
                keda.adapter.port,
                keda_ca,
                f"{external}/{KEDA_METRIC}?labelSelector=scaledobject.keda.sh%2Fname%3D{scaled}",
            )
            for name, scaled in zip(OWNERS[1:], (KEDA_LIVE, KEDA_CACHED), strict=True)
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
