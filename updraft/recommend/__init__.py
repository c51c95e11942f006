"""`updraft recommend`: container requests from Prometheus usage history, and what they save.

The seeds' Vertical Pod Autoscaler, as a report rather than an admission webhook: per
Deployment and StatefulSet, requests from each container's usage over a window (CPU at a high
percentile, memory at the peak working set, plus a margin; the VPA recommender's defaults), and
the nodes and $/h the provisioning simulation says the cluster needs with them against today's.

Modules: ``sizing`` (the pure arithmetic), ``usage`` (chunked range queries through the one
Prometheus client), ``workloads`` (pods to their Deployment/StatefulSet through the Kubernetes
API), ``savings`` (the simulation), ``report`` (assembly and the table/JSON/YAML forms),
``command`` (one run, its errors and exit status).
"""

from updraft.recommend.command import (
    OUTPUTS,
    RecommendSettings,
    recommend_report,
    render,
    run_recommend,
)
from updraft.recommend.report import Report, to_json, to_patch, to_table
from updraft.recommend.sizing import (
    MIB,
    ContainerUsage,
    Recommendation,
    SizingPolicy,
    percentile,
    recommend,
)
from updraft.recommend.usage import MAX_POINTS, UsageQuery, chunks

__all__ = [
    "MAX_POINTS",
    "MIB",
    "OUTPUTS",
    "ContainerUsage",
    "RecommendSettings",
    "Recommendation",
    "Report",
    "SizingPolicy",
    "UsageQuery",
    "chunks",
    "percentile",
    "recommend",
    "recommend_report",
    "render",
    "run_recommend",
    "to_json",
    "to_patch",
    "to_table",
]
