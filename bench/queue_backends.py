"""Queue scalers against their real servers on loopback, with no cache in front.

For every backend (Redis list and stream, PostgreSQL, SQS on moto, NATS JetStream over a client
connection and over the monitoring endpoint, RabbitMQ over AMQP and over the management API) this
starts the server with the integration tests' helpers, fills one queue, then times
``Scaler.measure()`` (one upstream call each): sequential latency p50/p99, and throughput with
several concurrent callers sharing the scaler's pooled client. Request counts are bounded; every
server listens on loopback only and is stopped at the end. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.cache_fanin import percentiles
from scalers import ScalerContext, ScalerError, SessionPool, SystemClock, default_registry
from tests.integration.queues.backends import BACKENDS, Backend
from tests.integration.queues.servers import stop_server
from tests.servers import ServerProcess

DEPTH = 25


async def bench_backend(
    name: str, backend: Backend, *, latency_calls: int, throughput_calls: int, concurrency: int
) -> dict[str, object]:
    await backend.prepare()
    sessions = SessionPool()
    context = ScalerContext(clock=SystemClock(), sessions=sessions)
    try:
        queue = await backend.new_queue()
        await backend.fill(queue, DEPTH)
        scaler = default_registry().build(backend.spec(queue), context=context)
        try:
            first = await scaler.measure()  # connects; not timed
            samples: list[int] = []
            errors: Counter[str] = Counter()
            for _ in range(latency_calls):
                started = time.perf_counter_ns()
                try:
                    await scaler.measure()
                except ScalerError as error:
                    errors[type(error).__name__] += 1
                    continue
                samples.append(time.perf_counter_ns() - started)
            remaining = throughput_calls

            async def caller() -> None:
                nonlocal remaining
                while remaining > 0:
                    remaining -= 1
                    try:
                        await scaler.measure()
                    except ScalerError as error:
                        # A slow upstream on a busy machine is a result, not a crash.
                        errors[type(error).__name__] += 1

            started = time.perf_counter_ns()
            await asyncio.gather(*(caller() for _ in range(concurrency)))
            seconds = (time.perf_counter_ns() - started) / 1e9
        finally:
            await scaler.close()
    finally:
        await sessions.close()
        await backend.close()
    return {
        "type": backend.type_name,
        "depth_measured": first.value,
        "measure_latency": percentiles(samples),
        "measure_throughput": {
            "calls": throughput_calls,
            "concurrency": concurrency,
            "seconds": round(seconds, 3),
            "per_second": round(throughput_calls / seconds, 1),
        },
        "errors": dict(errors),
    }


async def run(
    *, names: list[str], latency_calls: int, throughput_calls: int, concurrency: int
) -> dict[str, object]:
    results: dict[str, object] = {}
    started_servers: dict[str, ServerProcess] = {}
    with tempfile.TemporaryDirectory(prefix="updraft-bench-") as root:
        try:
            for name in names:
                kind, server_fixture = BACKENDS[name]
                server = started_servers.get(server_fixture)
                if server is None:
                    began = time.monotonic()
                    server = await asyncio.to_thread(kind.start, Path(root) / name)
                    started_servers[server_fixture] = server
                    ready = time.monotonic() - began
                    print(f"{name}: server ready in {ready:.1f}s", file=sys.stderr, flush=True)
                backend = kind(server)
                results[name] = await bench_backend(
                    name,
                    backend,
                    latency_calls=latency_calls,
                    throughput_calls=throughput_calls,
                    concurrency=concurrency,
                )
        finally:
            for server in started_servers.values():
                stop_server(server)
    return {
        "bench": "queue_backends",
        "cache": "off (Scaler.measure() directly)",
        "depth": DEPTH,
        "backends": results,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backends", default=",".join(sorted(BACKENDS)))
    parser.add_argument("--latency-calls", type=int, default=300)
    parser.add_argument("--throughput-calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    options = parser.parse_args()
    names = [name for name in options.backends.split(",") if name]
    unknown = sorted(set(names) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backends {unknown}; known: {sorted(BACKENDS)}")
    result = asyncio.run(
        run(
            names=names,
            latency_calls=min(options.latency_calls, 5000),
            throughput_calls=min(options.throughput_calls, 20000),
            concurrency=max(1, options.concurrency),
        )
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
