"""The provisioner's Prometheus metrics (one set per process, on prometheus-client's registry).

Owns the metric objects only; the controllers set them. Names start ``updraft_provisioner_``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BATCHES",
    "DISRUPTION_COMMANDS",
    "DISRUPTION_SAVINGS",
    "DRAIN_DURATION",
    "EVICTIONS",
    "LAUNCHED_COST",
    "LEADER",
    "NODECLAIMS",
    "NODECLAIMS_CREATED",
    "NODES_DISRUPTED",
    "PENDING_PODS",
    "SCHEDULING_DURATION",
]

PENDING_PODS = Gauge(
    "updraft_provisioner_pending_pods",
    "Pods the scheduler marked Unschedulable, seen by the last provisioning pass.",
)
SCHEDULING_DURATION = Histogram(
    "updraft_provisioner_scheduling_duration_seconds",
    "Seconds one provisioning pass spent simulating scheduling.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
NODECLAIMS = Gauge(
    "updraft_provisioner_nodeclaims",
    "NodeClaims by phase: Launching, Launched, Registered, Initialized, Terminating.",
    ["phase"],
)
LAUNCHED_COST = Gauge(
    "updraft_provisioner_launched_cost_per_hour",
    "USD per hour of every launched NodeClaim's offering, summed.",
)
BATCHES = Counter(
    "updraft_provisioner_batches",
    "Provisioning batches, by whether they created NodeClaims (created) or not (none).",
    ["outcome"],
)
NODECLAIMS_CREATED = Counter(
    "updraft_provisioner_nodeclaims_created",
    "NodeClaims created, by NodePool.",
    ["nodepool"],
)
LEADER = Gauge(
    "updraft_provisioner_leader", "1 while this replica holds the provisioner's leader lease."
)
DISRUPTION_COMMANDS = Counter(
    "updraft_provisioner_disruption_commands",
    "Disruption commands, by method and result (executed, abandoned, invalidated).",
    ["method", "result"],
)
NODES_DISRUPTED = Counter(
    "updraft_provisioner_nodes_disrupted",
    "NodeClaims deleted by disruption, by NodePool and reason (Empty, Drifted, Underutilized, "
    "Expired).",
    ["nodepool", "reason"],
)
DISRUPTION_SAVINGS = Gauge(
    "updraft_provisioner_disruption_savings_per_hour",
    "USD per hour saved by the disruption commands this process executed, summed.",
)
EVICTIONS = Counter(
    "updraft_provisioner_evictions",
    "Pods asked to leave a terminating node, by result: evicted, blocked (429: a PDB), gone "
    "(the pod was already deleted), failed (any other error), deleted (past the node's "
    "terminationGracePeriod, deleted directly).",
    ["result"],
)
DRAIN_DURATION = Histogram(
    "updraft_provisioner_drain_duration_seconds",
    "Seconds from a NodeClaim's deletion to its node being drained.",
    buckets=(1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0),
)
