"""GetMetrics on a cached trigger, against a bare grpc.aio unary handler returning the same
message, with the same client in the same run.

Both servers run in this process on loopback (plaintext, so TLS cost is not in the ratio); the
client is one grpc.aio channel per server, `--concurrency` callers each making sequential
calls. The cron trigger is asked once first, so every measured call is a cache hit: the ratio
is what Updraft's service adds (resolving the ref, the cache lookup, counting the call)
over gRPC's own per-call cost. Goal: throughput ratio >= 0.8. Prints one JSON object,
including the machine's load (`uptime`) during the run, and `cpu_ratio`: the bare side's
process CPU time per call over Updraft's (median of the rounds), which a loaded machine skews
far less than wall-clock throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time

import grpc
from prometheus_client import CollectorRegistry

from bench.cache_fanin import percentiles
from keda import GrpcServer, GrpcSettings
from keda._pb import externalscaler_pb2 as pb
from keda._pb import externalscaler_pb2_grpc as pb_grpc
from scalers import MetricCache, default_registry

CRON = {
    "scalerAddress": "localhost:9090",
    "scalerType": "cron",
    "timezone": "UTC",
    "start": "0 0 2 1 *",
    "end": "0 0 1 1 *",
    "desiredReplicas": "3",
}


class Bare(pb_grpc.ExternalScalerServicer):
    """The baseline: the same response, built fresh, with no lookup at all."""

    async def GetMetrics(  # noqa: N802 - the contract's name
        self, request: pb.GetMetricsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetMetricsResponse:
        return pb.GetMetricsResponse(
            metricValues=[
                pb.MetricValue(metricName=request.metricName, metricValue=3, metricValueFloat=3.0)
            ]
        )


async def drive(
    port: int, request: pb.GetMetricsRequest, *, calls: int, concurrency: int
) -> dict[str, float]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
        await stub.GetMetrics(request)  # connect, warm
        samples: list[int] = []

        async def caller(n: int) -> None:
            for _ in range(n):
                t0 = time.perf_counter_ns()
                await stub.GetMetrics(request)
                samples.append(time.perf_counter_ns() - t0)

        started = time.perf_counter()
        cpu_started = time.process_time()
        await asyncio.gather(*(caller(calls // concurrency) for _ in range(concurrency)))
        cpu = time.process_time() - cpu_started
        elapsed = time.perf_counter() - started
    return {
        "calls_per_s": round(len(samples) / elapsed, 1),
        # The process's CPU time (client, both servers, gRPC's threads) per call: what the
        # server side adds shows here even when other work on the machine skews wall time.
        "cpu_us_per_call": round(cpu / len(samples) * 1e6, 1),
        **percentiles(samples),
    }


async def main(calls: int, concurrency: int, rounds: int) -> dict[str, object]:
    registry = default_registry()
    cache = MetricCache(registry=registry, metrics_registry=CollectorRegistry())
    updraft = GrpcServer(
        cache,
        GrpcSettings(host="127.0.0.1", port=0, plaintext=True),
        known_types=registry.types(),
        metrics_registry=CollectorRegistry(),
    )
    await updraft.start()
    bare = grpc.aio.server()
    pb_grpc.add_ExternalScalerServicer_to_server(Bare(), bare)  # type: ignore[no-untyped-call]
    bare_port = bare.add_insecure_port("127.0.0.1:0")
    await bare.start()
    ref = pb.ScaledObjectRef(name="web", namespace="default", scalerMetadata=CRON)
    name = cache.scaler_for(updraft.service.resolve(ref).spec).metric_name
    request = pb.GetMetricsRequest(scaledObjectRef=ref, metricName=name)
    load_before = os.getloadavg()
    results: dict[str, list[dict[str, float]]] = {"updraft": [], "bare": []}
    try:
        # Interleaved rounds, so a change in machine load hits both sides alike.
        for _ in range(rounds):
            results["updraft"].append(
                await drive(updraft.port, request, calls=calls, concurrency=concurrency)
            )
            results["bare"].append(
                await drive(bare_port, request, calls=calls, concurrency=concurrency)
            )
    finally:
        await bare.stop(None)
        await updraft.close()
        await cache.close()
    best = {k: max(v, key=lambda r: r["calls_per_s"]) for k, v in results.items()}
    cpu = {k: statistics.median(r["cpu_us_per_call"] for r in v) for k, v in results.items()}
    return {
        "benchmark": "keda_grpc_getmetrics_cached",
        "python": platform.python_version(),
        "grpc": grpc.__version__,
        "calls_per_round": calls,
        "concurrency": concurrency,
        "rounds": rounds,
        "updraft": best["updraft"],
        "bare": best["bare"],
        "throughput_ratio": round(best["updraft"]["calls_per_s"] / best["bare"]["calls_per_s"], 3),
        "cpu_us_per_call_median": cpu,
        "cpu_ratio": round(cpu["bare"] / cpu["updraft"], 3),
        "goal_ratio": 0.8,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.calls, args.concurrency, args.rounds)), indent=2))
