"""The provisioner's Prometheus metrics, on the provisioner's own registry (``REGISTRY``).

Owns the metric objects only; the controllers set them. Names start ``updraft_provisioner_``.
Not on prometheus-client's default registry: a process exports only what it runs, and
`updraft serve` imports this module (the console script has every command) without running a
provisioner. `updraft provisioner` serves ``REGISTRY``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
    "NODEPOOL_COST",
    "NODEPOOL_LIMITED_PODS",
    "NODEPOOL_NODES",
    "NODES_DISRUPTED",
    "PASS_DURATION",
    "PENDING_PODS",
    "REGISTRY",
    "SCHEDULING_DURATION",
]

REGISTRY = CollectorRegistry()
"""Every metric below; the provisioner command adds it to the registry its /metrics serves."""

PENDING_PODS = Gauge(
    "updraft_provisioner_pending_pods",
    "Pods the scheduler marked Unschedulable and the provisioner would place, now (set by each "
    "provisioning pass and every resync).",
    registry=REGISTRY,
)
SCHEDULING_DURATION = Histogram(
    "updraft_provisioner_scheduling_duration_seconds",
    "Seconds one provisioning pass spent simulating scheduling.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)
PASS_DURATION = Histogram(
    "updraft_provisioner_pass_duration_seconds",
    "Seconds from a batch's close to the last NodeClaim of its pass created (Events after).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)
NODECLAIMS = Gauge(
    "updraft_provisioner_nodeclaims",
    "NodeClaims by phase: Launching, Launched, Registered, Initialized, Terminating.",
    ["phase"],
    registry=REGISTRY,
)
LAUNCHED_COST = Gauge(
    "updraft_provisioner_launched_cost_per_hour",
    "USD per hour of every launched NodeClaim's offering, summed.",
    registry=REGISTRY,
)
NODEPOOL_NODES = Gauge(
    "updraft_provisioner_nodepool_nodeclaims",
    "NodeClaims of each NodePool not being deleted, launched or not.",
    ["nodepool"],
    registry=REGISTRY,
)
NODEPOOL_COST = Gauge(
    "updraft_provisioner_nodepool_cost_per_hour",
    "USD per hour of each NodePool's launched NodeClaims not being deleted, summed.",
    ["nodepool"],
    registry=REGISTRY,
)
NODEPOOL_LIMITED_PODS = Gauge(
    "updraft_provisioner_nodepool_limited_pods",
    "Pending pods the last provisioning pass left without a node only because of each "
    "NodePool's spec.limits (0 once no pod is pending).",
    ["nodepool"],
    registry=REGISTRY,
)
BATCHES = Counter(
    "updraft_provisioner_batches",
    "Provisioning batches, by whether they created NodeClaims (created) or not (none).",
    ["outcome"],
    registry=REGISTRY,
)
NODECLAIMS_CREATED = Counter(
    "updraft_provisioner_nodeclaims_created",
    "NodeClaims created, by NodePool.",
    ["nodepool"],
    registry=REGISTRY,
)
LEADER = Gauge(
    "updraft_provisioner_leader",
    "1 while this replica holds the provisioner's leader lease.",
    registry=REGISTRY,
)
DISRUPTION_COMMANDS = Counter(
    "updraft_provisioner_disruption_commands",
    "Disruption commands, by method and result (executed, abandoned, invalidated).",
    ["method", "result"],
    registry=REGISTRY,
)
NODES_DISRUPTED = Counter(
    "updraft_provisioner_nodes_disrupted",
    "NodeClaims deleted by disruption, by NodePool and reason (Empty, Drifted, Underutilized, "
    "Expired).",
    ["nodepool", "reason"],
    registry=REGISTRY,
)
DISRUPTION_SAVINGS = Gauge(
    "updraft_provisioner_disruption_savings_per_hour",
    "USD per hour saved by the disruption commands this process executed, summed.",
    registry=REGISTRY,
)
EVICTIONS = Counter(
    "updraft_provisioner_evictions",
    "Pods asked to leave a terminating node, by result: evicted, blocked (429: a PDB), gone "
    "(the pod was already deleted), failed (any other error), deleted (past the node's "
    "terminationGracePeriod, deleted directly).",
    ["result"],
    registry=REGISTRY,
)
DRAIN_DURATION = Histogram(
    "updraft_provisioner_drain_duration_seconds",
    "Seconds from a NodeClaim's deletion to its node being drained.",
    buckets=(1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0),
    registry=REGISTRY,
)
