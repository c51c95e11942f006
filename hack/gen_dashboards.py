"""Writes Updraft's Grafana dashboards: manifests/grafana/*.json, the ConfigMaps Grafana's
sidecar loads (manifests/grafana/dashboards.yaml), and the chart's copies (charts/updraft/grafana/,
with alerts.yaml beside them; Helm reads files only from inside the chart).

The panels are data here, so ids are unique by construction, every panel reads the `datasource`
variable, and every selector is filtered by the `namespace` variable (never a fixed one).
tests/e2e/test_dashboards.py evaluates every query against a real Prometheus.

    python -m hack.gen_dashboards          # write
    python -m hack.gen_dashboards --check  # exit 1 when a written file differs
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "manifests" / "grafana"
CHART_COPY = REPO / "charts" / "updraft" / "grafana"
SIDECAR_LABEL = "grafana_dashboard"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
NS = 'namespace=~"$namespace"'
"""In every selector: the `namespace` variable (All matches series without the label too)."""
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    expr: str
    legend: str
    unit: str = "short"


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    namespace_from: str
    """A series every process of this dashboard exports, for the namespace variable's values."""
    panels: tuple[Panel, ...]


def rate(metric: str, by: str, matchers: str = "") -> str:
    extra = f", {matchers}" if matchers else ""
    return f"sum by ({by}) (rate({metric}{{{NS}{extra}}}[{RATE}]))"


def quantile(q: float, metric: str, by: str) -> str:
    keys = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({keys}) (rate({metric}_bucket{{{NS}}}[{RATE}])))"


METRICS_API = Dashboard(
    uid="updraft-metrics-api",
    title="Updraft / Metrics API",
    description="The external and custom metrics API kube-apiserver proxies to (`updraft serve`),"
    " and the KEDA external scaler beside it.",
    namespace_from="updraft_scaler_cache_keys",
    panels=(
        Panel(
            "Requests by group and code",
            "Metrics API answers per second, by API group and HTTP status code.",
            rate("updraft_adapter_requests_total", "group, code"),
            "{{group}} {{code}}",
            "reqps",
        ),
        Panel(
            "Requests by metric",
            "Answers per second by the metric they named (4xx answers name none).",
            rate("updraft_adapter_requests_total", "group, metric", 'metric!=""'),
            "{{group}} {{metric}}",
            "reqps",
        ),
        Panel(
            "Error ratio by metric (5xx)",
            "Share of answers per metric that were server errors: an upstream down with no "
            "fallback, or a failing provider. HPAs keep their last scale while this is 1.",
            rate("updraft_adapter_requests_total", "group, metric", 'code=~"5.."')
            + " / "
            + rate("updraft_adapter_requests_total", "group, metric"),
            "{{group}} {{metric}}",
            "percentunit",
        ),
        Panel(
            "Client errors by group and code (4xx)",
            "Refused requests: 401/403 (auth), 404 (a metric nobody serves in that namespace).",
            rate("updraft_adapter_requests_total", "group, code", 'code=~"4.."'),
            "{{group}} {{code}}",
            "reqps",
        ),
        Panel(
            "Latency p99 by group",
            "99th percentile of a request's time in the adapter, by API group.",
            quantile(0.99, "updraft_adapter_request_duration_seconds", "group"),
            "{{group}}",
            "s",
        ),
        Panel(
            "Latency p50 by group",
            "Median time in the adapter, by API group.",
            quantile(0.5, "updraft_adapter_request_duration_seconds", "group"),
            "{{group}}",
            "s",
        ),
        Panel(
            "KEDA external scaler calls by method and code",
            "gRPC calls from KEDA per second, by method and status code.",
            rate("updraft_grpc_server_handled_total", "grpc_method, grpc_code"),
            "{{grpc_method}} {{grpc_code}}",
            "reqps",
        ),
    ),
)

SCALERS = Dashboard(
    uid="updraft-scalers",
    title="Updraft / Scalers and cache",
    description="Upstream queries behind both front doors: per scaler type and per trigger "
    "(<metric name>@<digest>), the cache's staleness and fallbacks.",
    namespace_from="updraft_scaler_cache_keys",
    panels=(
        Panel(
            "Upstream queries by scaler type",
            "Queries to Prometheus, queues and the clock per second, by scaler type.",
            rate("updraft_scaler_upstream_calls_total", "type"),
            "{{type}}",
            "reqps",
        ),
        Panel(
            "Upstream queries by trigger",
            "Queries per second, by trigger: one per polling interval however many ask.",
            rate("updraft_scaler_trigger_upstream_calls_total", "trigger"),
            "{{trigger}}",
            "reqps",
        ),
        Panel(
            "Asks per upstream query by trigger",
            "The cache's fan-in: asks from HPAs and KEDA over upstream queries, per trigger.",
            f"{rate('updraft_scaler_trigger_asks_total', 'trigger')}"
            f" / {rate('updraft_scaler_trigger_upstream_calls_total', 'trigger')}",
            "{{trigger}}",
        ),
        Panel(
            "Upstream errors by trigger",
            "Failed upstream queries per second, by trigger.",
            rate("updraft_scaler_trigger_upstream_errors_total", "trigger"),
            "{{trigger}}",
            "reqps",
        ),
        Panel(
            "Upstream errors by type and error",
            "Failed upstream queries per second, by scaler type and error class.",
            rate("updraft_scaler_upstream_errors_total", "type, error"),
            "{{type}} {{error}}",
            "reqps",
        ),
        Panel(
            "Upstream latency p99 by type",
            "99th percentile of an upstream query's duration, by scaler type.",
            quantile(0.99, "updraft_scaler_upstream_latency_seconds", "type"),
            "{{type}}",
            "s",
        ),
        Panel(
            "Stale values served by type",
            "Asks answered with the last good value while the upstream fails (up to the "
            "staleness bound), per second.",
            rate("updraft_scaler_cache_stale_served_total", "type"),
            "{{type}}",
            "reqps",
        ),
        Panel(
            "Fallbacks served by type",
            "Asks answered with a MetricSource's fallback value, per second: the upstream has "
            "failed failureThreshold times in a row.",
            rate("updraft_scaler_cache_fallbacks_total", "type"),
            "{{type}}",
            "reqps",
        ),
        Panel(
            "Cache hit ratio by type",
            "Asks answered from the cache over all asks.",
            f"{rate('updraft_scaler_cache_hits_total', 'type')} / ("
            f"{rate('updraft_scaler_cache_hits_total', 'type')}"
            f" + {rate('updraft_scaler_cache_misses_total', 'type')})",
            "{{type}}",
            "percentunit",
        ),
        Panel(
            "Cached triggers",
            "Triggers in the cache, per process.",
            f"sum by (instance) (updraft_scaler_cache_keys{{{NS}}})",
            "{{instance}}",
        ),
    ),
)

PROVISIONER = Dashboard(
    uid="updraft-provisioner",
    title="Updraft / Node provisioner",
    description="`updraft provisioner`: pending pods, launches, cost and disruption. Series come "
    "from the leader; max() keeps one value when every replica exports.",
    namespace_from="updraft_provisioner_leader",
    panels=(
        Panel(
            "Pending pods",
            "Pods the scheduler marked Unschedulable, seen by the last provisioning pass.",
            f"max(updraft_provisioner_pending_pods{{{NS}}})",
            "pending",
        ),
        Panel(
            "Leader",
            "1 for the replica that holds the leader lease.",
            f"max by (instance) (updraft_provisioner_leader{{{NS}}})",
            "{{instance}}",
        ),
        Panel(
            "NodeClaims by phase",
            "NodeClaims Launching, Launched, Registered, Initialized, Terminating.",
            f"max by (phase) (updraft_provisioner_nodeclaims{{{NS}}})",
            "{{phase}}",
        ),
        Panel(
            "NodeClaims launched by pool",
            "NodeClaims created per second, by NodePool.",
            rate("updraft_provisioner_nodeclaims_created_total", "nodepool"),
            "{{nodepool}}",
        ),
        Panel(
            "Launched cost",
            "USD per hour of every launched NodeClaim's offering, summed.",
            f"max(updraft_provisioner_launched_cost_per_hour{{{NS}}})",
            "$/h",
            "currencyUSD",
        ),
        Panel(
            "NodeClaims by pool",
            "Each NodePool's NodeClaims not being deleted, launched or not.",
            f"max by (nodepool) (updraft_provisioner_nodepool_nodeclaims{{{NS}}})",
            "{{nodepool}}",
        ),
        Panel(
            "Pods left out by pool limits",
            "Pending pods the last pass left without a node only because of a NodePool's "
            "spec.limits.",
            f"max by (nodepool) (updraft_provisioner_nodepool_limited_pods{{{NS}}})",
            "{{nodepool}}",
        ),
        Panel(
            "Cost by pool",
            "USD per hour of each NodePool's launched NodeClaims not being deleted.",
            f"max by (nodepool) (updraft_provisioner_nodepool_cost_per_hour{{{NS}}})",
            "{{nodepool}}",
            "currencyUSD",
        ),
        Panel(
            "Provisioning batches by outcome",
            "Batches per second that created NodeClaims (created) or not (none: nothing fits, "
            "or a pool is at its limits).",
            rate("updraft_provisioner_batches_total", "outcome"),
            "{{outcome}}",
        ),
        Panel(
            "Decision time p99",
            "99th percentile of one provisioning pass's scheduling simulation.",
            quantile(0.99, "updraft_provisioner_scheduling_duration_seconds", ""),
            "p99",
            "s",
        ),
        Panel(
            "Disruption commands by method and result",
            "Disruption commands per second: executed, abandoned or invalidated.",
            rate("updraft_provisioner_disruption_commands_total", "method, result"),
            "{{method}} {{result}}",
        ),
        Panel(
            "Nodes disrupted by pool and reason",
            "NodeClaims deleted by disruption per second: Empty, Drifted, Underutilized, Expired.",
            rate("updraft_provisioner_nodes_disrupted_total", "nodepool, reason"),
            "{{nodepool}} {{reason}}",
        ),
        Panel(
            "Disruption savings",
            "USD per hour saved by the disruption commands the leader executed, summed.",
            f"max(updraft_provisioner_disruption_savings_per_hour{{{NS}}})",
            "$/h",
            "currencyUSD",
        ),
        Panel(
            "Evictions by result",
            "Pods asked to leave a terminating node per second: evicted, blocked (a PDB), "
            "gone, failed, deleted (past terminationGracePeriod).",
            rate("updraft_provisioner_evictions_total", "result"),
            "{{result}}",
        ),
        Panel(
            "Drain time p99",
            "99th percentile from a NodeClaim's deletion to its node drained.",
            quantile(0.99, "updraft_provisioner_drain_duration_seconds", ""),
            "p99",
            "s",
        ),
    ),
)

DASHBOARDS = (METRICS_API, SCALERS, PROVISIONER)


def variables(dashboard: Dashboard) -> list[dict[str, Any]]:
    values = f"label_values({dashboard.namespace_from}, namespace)"
    return [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
        },
        {
            "name": "namespace",
            "label": "Namespace",
            "type": "query",
            "datasource": DATASOURCE,
            "definition": values,
            "query": {"query": values, "refId": "namespace"},
            "includeAll": True,
            "allValue": ".*",
            "multi": True,
            "current": {"text": "All", "value": "$__all"},
            "refresh": 2,
            "hide": 0,
        },
    ]


def panel_json(panel: Panel, index: int) -> dict[str, Any]:
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": (index % 2) * 12, "y": (index // 2) * 8},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {
                "refId": "A",
                "datasource": DATASOURCE,
                "expr": panel.expr,
                "legendFormat": panel.legend,
            }
        ],
    }


def dashboard_json(dashboard: Dashboard) -> dict[str, Any]:
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["updraft"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "templating": {"list": variables(dashboard)},
        "annotations": {"list": []},
        "panels": [panel_json(p, i) for i, p in enumerate(dashboard.panels)],
    }


def rendered() -> dict[Path, str]:
    """Every file this script writes, by path."""
    files: dict[Path, str] = {}
    configmaps = []
    for d in DASHBOARDS:
        text = json.dumps(dashboard_json(d), indent=2) + "\n"
        files[OUT / f"{d.uid}.json"] = text
        files[CHART_COPY / f"{d.uid}.json"] = text
        configmaps.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": f"{d.uid}-dashboard",
                    "labels": {
                        SIDECAR_LABEL: "1",
                        "app.kubernetes.io/name": "updraft",
                        "app.kubernetes.io/part-of": "updraft",
                    },
                },
                "data": {f"{d.uid}.json": text},
            }
        )
    header = (
        "# Generated by `python -m hack.gen_dashboards` from hack/gen_dashboards.py: edit that.\n"
        "# The dashboards as ConfigMaps for Grafana's sidecar (label grafana_dashboard=1), in\n"
        "# the namespace you apply them to: kubectl apply -n monitoring -f <this file>\n"
    )
    files[OUT / "dashboards.yaml"] = header + yaml.safe_dump_all(configmaps, sort_keys=False)
    files[CHART_COPY / "alerts.yaml"] = (OUT / "alerts.yaml").read_text()
    return files


def main(argv: list[str]) -> int:
    files = rendered()
    if "--check" in argv:
        stale = [
            str(p.relative_to(REPO))
            for p, t in files.items()
            if not p.is_file() or p.read_text() != t
        ]
        if stale:
            print(f"gen_dashboards: out of date: {', '.join(stale)}", file=sys.stderr)
            return 1
        return 0
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
