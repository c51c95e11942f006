"""`updraft recommend`: one run, from settings to the printed report.

Owns the order of the work (read the cluster, query Prometheus, size, simulate, print) and
turning failures into one line and an exit status: 2 for what the user must change before a run
can start (flags, kubeconfig, auth files), 1 for a run that failed (Prometheus or the API
server down or refusing). The flags themselves are the console script's (`updraft.cli`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from kube import ConnectSettings, KubeError
from provisioner import Catalog
from scalers import PrometheusClient, ScalerError, SessionPool
from updraft.process import StartupError, open_cluster
from updraft.recommend.report import Report, build_report, to_json, to_patch, to_table
from updraft.recommend.savings import usable_pools
from updraft.recommend.sizing import SizingPolicy
from updraft.recommend.usage import Progress, UsageQuery, fetch_history
from updraft.recommend.workloads import read_cluster
from updraft.serve import PrometheusAuthFiles

__all__ = ["OUTPUTS", "RecommendSettings", "recommend_report", "render", "run_recommend"]

OUTPUTS = ("table", "json", "yaml")


@dataclass(frozen=True)
class RecommendSettings:
    prometheus_url: str
    query: UsageQuery
    policy: SizingPolicy = field(default_factory=SizingPolicy)
    output: str = "table"
    kubeconfig: Path | None = None
    connect: ConnectSettings = field(default_factory=ConnectSettings)
    prometheus_auth: PrometheusAuthFiles = field(default_factory=PrometheusAuthFiles)
    prometheus_timeout: float = 120.0
    """Per range query: a day of every container of a large cluster takes Prometheus a while."""
    progress: bool = False


async def recommend_report(settings: RecommendSettings, *, stderr: TextIO | None = None) -> Report:
    async with contextlib.AsyncExitStack() as stack:
        api = await open_cluster(stack, kubeconfig=settings.kubeconfig, settings=settings.connect)
        cluster = await read_cluster(api, namespace=settings.query.namespace)
        auth = await asyncio.to_thread(settings.prometheus_auth.load)
        sessions = SessionPool(connections_per_session=4)
        stack.push_async_callback(sessions.close)
        client = PrometheusClient(
            settings.prometheus_url,
            sessions=sessions,
            auth=auth,
            headers=settings.prometheus_auth.headers,
            timeout=settings.prometheus_timeout,
        )
        stack.push_async_callback(client.close)
        history = await fetch_history(
            client,
            settings.query,
            progress=lambda total: Progress(total, enabled=settings.progress, stream=stderr),
        )
    catalog = Catalog.aws()
    pools, problems = usable_pools(cluster.nodepools, cluster.nodeclasses, catalog)
    # The simulations are CPU work: off the loop, as the provisioner runs them.
    return await asyncio.to_thread(
        build_report,
        cluster,
        history,
        query=settings.query,
        policy=settings.policy,
        nodepools=pools,
        catalog=catalog,
        problems=problems,
    )


def render(report: Report, output: str) -> str:
    if output == "json":
        return to_json(report)
    if output == "yaml":
        return to_patch(report)
    return to_table(report)


def run_recommend(settings: RecommendSettings) -> int:
    """The console script's `recommend`: 0 with the report on stdout; else one line on stderr
    and 2 (start-up: kubeconfig, auth files) or 1 (Prometheus or the cluster failed)."""
    try:
        report = asyncio.run(recommend_report(settings))
    except StartupError as e:
        print(f"updraft recommend: {e}", file=sys.stderr)
        return 2
    except (ScalerError, KubeError) as e:
        print(f"updraft recommend: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(render(report, settings.output))
    return 0
