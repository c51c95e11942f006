"""Fan-in: 1,000 concurrent askers over 50 Prometheus triggers for 3 polling intervals.

Runs against a small local aiohttp server that answers ``/api/v1/query`` like Prometheus and
counts requests, so no Prometheus binary is needed. Reports upstream queries per interval (the
goal is exactly one per trigger per interval: 50) and cache-hit latency, next to baselines
measured in the same run (a dict lookup plus an await; uncached ``measure()`` against the same
server), so the numbers read as ratios on a noisy machine. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import platform
import statistics
import time
from collections import Counter

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry

from scalers import (
    MetricCache,
    PrometheusScaler,
    ScalerContext,
    SessionPool,
    SystemClock,
    TriggerPolicy,
    TriggerSpec,
)


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    """p50/p99 in microseconds."""
    if not samples_ns:
        return {"p50_us": 0.0, "p99_us": 0.0, "n": 0}
    ordered = sorted(samples_ns)
    return {
        "p50_us": round(statistics.median(ordered) / 1000, 3),
        "p99_us": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000, 3),
        "n": len(ordered),
    }


class FakePrometheus:
    """Answers every instant query with one series, remembering when each query came."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.by_query: dict[str, list[float]] = {}

    async def query(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        self.arrivals.append(now)
        self.by_query.setdefault(request.query.get("query", ""), []).append(now)
        body = orjson.dumps(
            {
                "status": "success",
                "data": {
                    "resultType": "vector",
                    "result": [{"metric": {}, "value": [time.time(), "17"]}],
                },
            }
        )
        return web.Response(body=body, content_type="application/json")


async def run(*, askers: int, triggers: int, interval: float, intervals: int) -> dict[str, object]:
    upstream = FakePrometheus()
    app = web.Application()
    app.router.add_get("/api/v1/query", upstream.query)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    address = f"http://127.0.0.1:{port}"
    specs = [
        TriggerSpec("prometheus", {"serverAddress": address, "query": f"q{i}", "threshold": "10"})
        for i in range(triggers)
    ]
    policy = TriggerPolicy(polling_interval=interval, staleness_bound=10 * interval)
    metrics = CollectorRegistry()
    cache = MetricCache(metrics_registry=metrics)

    def misses() -> float:
        return (
            metrics.get_sample_value("updraft_scaler_cache_misses_total", {"type": "prometheus"})
            or 0.0
        )

    hit_ns: list[int] = []
    miss_ns: list[int] = []
    started = time.monotonic()
    end = started + interval * intervals

    async def asker(number: int) -> None:
        n = number
        while time.monotonic() < end:
            spec = specs[n % triggers]
            n += 1
            before = misses()
            t0 = time.perf_counter_ns()
            await cache.get(spec, policy)
            elapsed = time.perf_counter_ns() - t0
            # A hit never suspends, so no other asker can have missed in between.
            (hit_ns if misses() == before else miss_ns).append(elapsed)
            await asyncio.sleep(0.02)

    await asyncio.gather(*(asker(i) for i in range(askers)))
    fanin_queries = len(upstream.arrivals)
    per_interval = Counter(int((t - started) // interval) for t in upstream.arrivals)
    counted = [per_interval.get(i, 0) for i in range(intervals)]
    # The invariant itself, free of where the wall-clock bins fall: each trigger's upstream
    # queries are at least one polling interval apart.
    gaps = [
        later - earlier
        for times in upstream.by_query.values()
        for earlier, later in itertools.pairwise(times)
    ]
    min_gap = min(gaps) if gaps else None
    most_per_trigger = max((len(t) for t in upstream.by_query.values()), default=0)

    # Baseline 1: the floor of any cached answer, a dict lookup plus an await.
    table = {spec.identity: spec for spec in specs}

    async def lookup(key: object) -> object:
        return table.get(key)  # type: ignore[call-overload]

    dict_ns: list[int] = []
    for i in range(20_000):
        key = specs[i % triggers].identity
        t0 = time.perf_counter_ns()
        await lookup(key)
        dict_ns.append(time.perf_counter_ns() - t0)

    # Baseline 2: what every ask would cost without the cache.
    pool = SessionPool()
    scaler = PrometheusScaler.from_spec(
        specs[0], context=ScalerContext(clock=SystemClock(), sessions=pool)
    )
    uncached_ns: list[int] = []
    for _ in range(300):
        t0 = time.perf_counter_ns()
        await scaler.measure()
        uncached_ns.append(time.perf_counter_ns() - t0)
    await scaler.close()
    await pool.close()
    await cache.close()
    await runner.cleanup()

    hit = percentiles(hit_ns)
    base = percentiles(dict_ns)
    uncached = percentiles(uncached_ns)
    return {
        "bench": "cache_fanin",
        "askers": askers,
        "triggers": triggers,
        "polling_interval_s": interval,
        "intervals": intervals,
        "upstream_queries_total": fanin_queries,
        "upstream_queries_per_interval": counted,
        "upstream_queries_goal_per_interval": triggers,
        "triggers_queried": len(upstream.by_query),
        "max_queries_of_one_trigger": most_per_trigger,
        "min_seconds_between_queries_of_one_trigger": None
        if min_gap is None
        else round(min_gap, 3),
        "asks": len(hit_ns) + len(miss_ns),
        "cache_hit_latency": hit,
        "cache_miss_latency": percentiles(miss_ns),
        "baseline_dict_lookup_await": base,
        "baseline_uncached_measure": uncached,
        "ratio_hit_p50_to_dict_p50": round(hit["p50_us"] / max(base["p50_us"], 1e-9), 2),
        "ratio_uncached_p50_to_hit_p50": round(uncached["p50_us"] / max(hit["p50_us"], 1e-9), 1),
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--askers", type=int, default=1000)
    parser.add_argument("--triggers", type=int, default=50)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--intervals", type=int, default=3)
    options = parser.parse_args()
    result = asyncio.run(
        run(
            askers=options.askers,
            triggers=options.triggers,
            interval=options.interval,
            intervals=options.intervals,
        )
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
