"""`updraft recommend`'s report without servers: attribution of history to workloads, the
chunks of a long window, and the table, JSON and YAML forms (the simulation is the real one)."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pytest
import yaml

from kube import JSON
from provisioner import Catalog, nodepool_from_k8s
from updraft.cli import main
from updraft.recommend import (
    MAX_POINTS,
    MIB,
    SizingPolicy,
    UsageQuery,
    chunks,
    to_json,
    to_patch,
    to_table,
)
from updraft.recommend.report import build_report
from updraft.recommend.savings import pack
from updraft.recommend.usage import History, Progress, cpu_query, memory_query
from updraft.recommend.workloads import Cluster, Workload, resized

DAY = 86400.0
QUERY = UsageQuery(start=0.0, end=DAY, step=60.0, rate_window=300.0, chunk=DAY)


def _pod(name: str, uid: str, *, cpu: str, memory: str, limit: str | None = None) -> JSON:
    resources: dict[str, Any] = {"requests": {"cpu": cpu, "memory": memory}}
    if limit is not None:
        resources["limits"] = {"memory": limit}
    return {
        "metadata": {"name": name, "namespace": "shop", "uid": uid, "resourceVersion": "1"},
        "spec": {"containers": [{"name": "app", "resources": resources}]},
        "status": {"phase": "Running"},
    }


def _cluster() -> Cluster:
    web = Workload(
        kind="Deployment",
        namespace="shop",
        name="web",
        containers=("app",),
        requests={"app": {"cpu": "2", "memory": "4Gi"}},
        limits={"app": {"memory": "4Gi"}},
    )
    db = Workload(
        kind="StatefulSet",
        namespace="shop",
        name="db",
        containers=("app",),
        requests={"app": {"cpu": "1", "memory": "1Gi"}},
        limits={},
    )
    web.pods = [
        _pod(f"web-5d9f7c-{i}", f"w{i}", cpu="2", memory="4Gi", limit="4Gi") for i in range(3)
    ]
    db.pods = [_pod("db-0", "d0", cpu="1", memory="1Gi")]
    return Cluster(
        workloads={web.key: web, db.key: db},
        pods=[*web.pods, *db.pods],
        owner={"w0": web.key, "w1": web.key, "w2": web.key, "d0": db.key},
        daemonsets=[],
        nodepools=[],
        nodeclasses={},
    )


def _history() -> History:
    history = History()
    for i in range(3):
        history.cpu[("shop", f"web-5d9f7c-{i}", "app")] = [(t * 60.0, 0.2) for t in range(1, 91)]
        history.memory[("shop", f"web-5d9f7c-{i}", "app")] = [(60.0, 300 * MIB)]
    # A pod of an older ReplicaSet, gone from the cluster: still the Deployment's.
    history.cpu[("shop", "web-6c44b8-zzzzz", "app")] = [(t * 60.0, 1.0) for t in range(1, 31)]
    history.memory[("shop", "web-6c44b8-zzzzz", "app")] = [(60.0, 900 * MIB)]
    # A StatefulSet pod gone since: its ordinal names it.
    history.cpu[("shop", "db-1", "app")] = [(60.0, 0.05)]
    history.memory[("shop", "db-1", "app")] = [(60.0, 100 * MIB)]
    history.cpu[("other", "stray-1", "app")] = [(60.0, 9.0)]
    # A CronJob's pod is no Deployment's, even with a Deployment of that name.
    history.cpu[("shop", "web-29430720-x7k2p", "app")] = [(60.0, 9.0)]
    return history


POOL = nodepool_from_k8s(
    {
        "metadata": {"name": "general"},
        "spec": {
            "template": {
                "spec": {
                    "requirements": [
                        {
                            "key": "node.kubernetes.io/instance-type",
                            "operator": "In",
                            "values": ["m5.large", "m5.xlarge", "m5.2xlarge"],
                        },
                        {
                            "key": "karpenter.sh/capacity-type",
                            "operator": "In",
                            "values": ["on-demand"],
                        },
                    ]
                }
            }
        },
    }
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.aws()


def test_history_goes_to_its_workload_even_for_pods_that_are_gone(catalog: Catalog) -> None:
    report = build_report(
        _cluster(), _history(), query=QUERY, policy=SizingPolicy(), nodepools=[], catalog=catalog
    )
    by_name = {r.workload.name: r for r in report.workloads}
    web = by_name["web"].containers[0]
    # 270 samples at 0.2 and 30 at 1.0: the 90th percentile (rank 270) is 0.2.
    assert web.sizing.cpu_samples == 300
    assert web.sizing.cpu_percentile_cores == 0.2
    assert web.recommended == {"cpu": "230m", "memory": "1035Mi"}  # 900Mi x 1.15
    db = by_name["db"].containers[0]
    assert db.recommended == {"cpu": "58m", "memory": "250Mi"}  # the floor of 250Mi
    assert report.today is None  # no NodePool: nothing simulated


def test_each_workloads_saving_is_a_fresh_simulation_against_todays(catalog: Catalog) -> None:
    cluster = _cluster()
    report = build_report(
        cluster, _history(), query=QUERY, policy=SizingPolicy(), nodepools=[POOL], catalog=catalog
    )
    today = pack(cluster.pods, nodepools=[POOL], catalog=catalog)
    assert report.today == today
    web = next(r for r in report.workloads if r.workload.name == "web")
    new = {"app": {"cpu": "230m", "memory": "1035Mi"}}
    alone = pack(
        [resized(p, new) for p in cluster.workloads[web.workload.key].pods]
        + cluster.workloads[("StatefulSet", "shop", "db")].pods,
        nodepools=[POOL],
        catalog=catalog,
    )
    assert web.packing == alone
    assert today.price > alone.price
    document = orjson.loads(to_json(report))
    saving = next(w for w in document["workloads"] if w["name"] == "web")["savingPerHour"]
    assert saving == pytest.approx(today.price - alone.price, abs=1e-6)
    assert document["savingPerHour"] == pytest.approx(
        today.price - report.resized.price if report.resized else 0.0, abs=1e-6
    )


def test_resized_pods_keep_everything_but_the_requests_and_raise_a_lower_limit() -> None:
    pod = _pod("web-1", "w1", cpu="2", memory="1Gi", limit="1Gi")
    out = resized(pod, {"app": {"cpu": "100m", "memory": "2Gi"}})
    resources = out["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "100m", "memory": "2Gi"}, "limits": {"memory": "2Gi"}}
    assert "resourceVersion" not in out["metadata"]
    assert pod["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "2"  # a copy


def test_table_json_and_yaml(catalog: Catalog) -> None:
    report = build_report(
        _cluster(),
        _history(),
        query=QUERY,
        policy=SizingPolicy(),
        nodepools=[POOL],
        catalog=catalog,
    )
    table = to_table(report)
    lines = table.splitlines()
    header = ["WORKLOAD", "CONTAINER", "CPU", "MEMORY", "NODES", "$/H", "SAVING", "$/H"]
    assert lines[0].split() == header
    web = next(line for line in lines if line.startswith("shop/deployment/web"))
    assert "2 -> 230m" in web
    assert "4Gi -> 1035Mi" in web
    assert lines[-1].startswith("all workloads re-sized: nodes ")

    document = orjson.loads(to_json(report))
    assert document["window"] == {
        "start": "1970-01-01T00:00:00Z",
        "end": "1970-01-02T00:00:00Z",
        "step": "1m",
        "rateWindow": "5m",
    }
    assert document["policy"]["cpuPercentile"] == 0.9
    assert [w["name"] for w in document["workloads"]] == ["db", "web"]

    docs = list(yaml.safe_load_all(to_patch(report)))
    assert docs[1] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "resources": {"requests": {"cpu": "230m", "memory": "1035Mi"}},
                        }
                    ]
                }
            }
        },
    }
    assert docs[0]["kind"] == "StatefulSet"


def test_a_workload_already_right_is_not_patched(catalog: Catalog) -> None:
    cluster = _cluster()
    cluster.workloads[("Deployment", "shop", "web")].requests["app"] = {
        "cpu": "230m",
        "memory": "1035Mi",
    }
    report = build_report(
        cluster, _history(), query=QUERY, policy=SizingPolicy(), nodepools=[], catalog=catalog
    )
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(to_patch(report))]
    assert names == ["db"]


def test_chunks_cover_every_step_once_within_the_point_limit() -> None:
    week = UsageQuery(start=1000.0, end=1000.0 + 7 * DAY, step=60.0, rate_window=300.0, chunk=DAY)
    spans = chunks(week)
    assert len(spans) == 7
    assert spans[0] == (1060.0, 1000.0 + DAY)
    assert spans[1][0] == 1000.0 + DAY + 60
    assert spans[-1][1] == 1000.0 + 7 * DAY
    fine = UsageQuery(start=0.0, end=2 * DAY, step=1.0, rate_window=5.0, chunk=2 * DAY)
    spans = chunks(fine)
    assert all((last - first) / 1.0 + 1 <= MAX_POINTS for first, last in spans)
    assert sum(round(last - first) + 1 for first, last in spans) == 2 * DAY


def test_queries_leave_out_pod_cgroups_and_select_a_namespace() -> None:
    query = UsageQuery(start=0, end=DAY, step=60, rate_window=300, chunk=DAY, namespace='a"b')
    assert cpu_query(query) == (
        "sum by (namespace, pod, container) (rate(container_cpu_usage_seconds_total"
        '{container!="",container!="POD",namespace="a\\"b"}[5m]))'
    )
    assert "max_over_time(container_memory_working_set_bytes{" in memory_query(query)
    assert memory_query(query).endswith("[1m]))")


def test_progress_line_only_when_enabled() -> None:
    on, off = io.StringIO(), io.StringIO()
    for stream, enabled in ((on, True), (off, False)):
        bar = Progress(2, enabled=enabled, stream=stream)
        bar.step()
        bar.step()
    line = "\rrecommend: querying Prometheus"
    assert on.getvalue() == f"{line} 1/2{line} 2/2\n"
    assert off.getvalue() == ""


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--cpu-percentile", "0"], "--cpu-percentile"),
        (["--memory-percentile", "2"], "--memory-percentile"),
        (["--margin", "x"], "--margin"),
        (["--window", "-1h"], "--window"),
        (["--step", "10m", "--chunk", "1m"], "--chunk"),
        (["--end", "2026-13-01T00:00:00Z"], "--end"),
        (["--min-memory", "lots"], "--min-memory"),
        (["-o", "csv"], "--output"),
        (["--kubeconfig", "/nonexistent/kubeconfig"], "--kubeconfig"),
        (["--prometheus-password-file", "/x"], "--prometheus-password-file"),
    ],
)
def test_bad_flags_exit_2_with_one_line_naming_the_flag(
    flags: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["recommend", "--prometheus-url=http://127.0.0.1:9", *flags])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert named in err
