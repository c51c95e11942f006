"""Benchmark the disruption decisions on a large cluster; prints one JSON object.

The cluster is Node, NodeClaim and Pod JSON as the API server holds them (``Fleet``): by
default 500 launched, initialized nodes holding 5,000 of ``provisioner_sim``'s plain pods, 10
per node, idle for an hour (so every node is consolidatable), and *deliberately wasteful*:
each node is the cheapest on-demand type of the pool that holds twice its pods' requests, in
the zones in turn. Default budgets (10 % of the nodes per reason) apply.

Two figures, each against a baseline measured in the same run:

- ``decision``: one disruption pass as the controller makes it (``find_candidates`` over the
  cluster's JSON, the simulation's views of the nodes with their pods, the budgets' room, then
  ``methods.decide``: emptiness, drift, multi-node and single-node consolidation, each asking
  the one ``scheduling.simulate``), for the NodePool of the full catalog (spot and on-demand on
  every type), in ms of wall and CPU time, best of ``--repeat``. Timed twice: on the wasteful
  cluster (``first_pass``: the pass that finds the first command) and once the methods have
  run to their fixed point (``settled_pass``: no command is left, so multi-node's binary search
  and single-node's scan over every candidate all fail, the most work a pass does). The
  baseline is one provisioning ``simulate`` of the same pods on an empty cluster (what a
  scale-up from nothing costs); ``ratio_to_baseline`` is the pass over it. Goal: under 2 s.
- ``cost``: the methods' commands applied one after the other (the candidates' pods moved
  where the simulation put them, each replacement launched as its first type's cheapest
  offering) until no method finds a command, for two pools (the full catalog, and on-demand
  c/m/r as in ``provisioner_sim``); ``ratio_to_fresh`` is the $/h left over the $/h of the
  provisioning simulation's fresh packing of the same pods. Goal: at most 1.05.

The fixed point on the full catalog takes one single-node replacement per node (spot for
on-demand, one at a time): hundreds of passes at 500 nodes, which ``--max-commands`` bounds
(``fixed_point`` then says whether it was reached) and ``--pools`` can leave out.

Run: ``.venv/bin/python -m bench.disruption [--nodes 500] [--pods-per-node 10] [--seed 1]
[--repeat 3] [--pools decision,c-m-r-on-demand] [--max-commands N]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.provisioner_sim import COST_POOLS, pod_objects
from kits import format_rfc3339
from kube import JSON
from provisioner import Catalog, NodePool, Pod, nodepool_from_k8s, pod_from_k8s
from provisioner.catalog import InstanceType, Offering
from provisioner.claims import NodeClaimView
from provisioner.disruption import methods
from provisioner.disruption.budgets import REASONS, allowed
from provisioner.disruption.candidates import find_candidates
from provisioner.disruption.methods import Cluster, Command
from provisioner.disruption.policy import PoolPolicy
from provisioner.labels import CAPACITY_TYPE, HOSTNAME, INSTANCE_TYPE, NODEPOOL, ZONE
from provisioner.objects import NODEPOOL_HASH_ANNOTATION, node_view, resources_to_k8s
from provisioner.resources import Resources
from provisioner.scheduling import SimulationResult, simulate

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
IDLE = timedelta(hours=1)
"""How long ago every node's last pod event was: past any consolidateAfter."""
POOL = "bench"
FULL = "all-types-spot-and-on-demand"
"""``COST_POOLS``' name for the full catalog: the decision is timed on it."""
MAX_COMMANDS = 10_000
"""A fixed point is reached long before; the bound only stops a method that never settles."""


def pool_object(*requirements: Mapping[str, Any]) -> dict[str, Any]:
    """The NodePool JSON; with no requirement, spot and on-demand on every type."""
    reqs = list(requirements) or [
        {"key": CAPACITY_TYPE, "operator": "In", "values": ["spot", "on-demand"]}
    ]
    return {
        "metadata": {"name": POOL},
        "spec": {
            "template": {
                "spec": {
                    "requirements": reqs,
                    "nodeClassRef": {"group": "updraft.io", "kind": "NodeClass", "name": "k"},
                }
            },
            "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized"},
        },
    }


@dataclass
class Fleet:
    """A cluster of one pool's nodes: claims (parsed, as the state keeps them), nodes and the
    pods bound to each, all JSON."""

    pool_json: dict[str, Any]
    pool: NodePool
    catalog: Catalog
    claims: dict[str, NodeClaimView] = field(default_factory=dict)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    pods: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    launched: int = 0

    @property
    def price(self) -> float:
        return sum(c.price for c in self.claims.values())

    def launch(
        self, itype: InstanceType, offering: Offering, pods: Sequence[dict[str, Any]]
    ) -> str:
        """A launched, initialized, idle node of ``itype`` at ``offering`` holding ``pods``."""
        name = f"{POOL}-{self.launched:05d}"
        self.launched += 1
        since = format_rfc3339(NOW - IDLE)
        alloc = resources_to_k8s(itype.allocatable)
        labels = {
            **itype.requirements.single_values(),
            NODEPOOL: POOL,
            INSTANCE_TYPE: itype.name,
            ZONE: offering.zone,
            CAPACITY_TYPE: offering.capacity_type,
            HOSTNAME: name,
        }
        self.nodes[name] = {
            "metadata": {"name": name, "labels": labels},
            "spec": {"providerID": f"kwok://{name}"},
            "status": {"allocatable": alloc, "capacity": resources_to_k8s(itype.capacity)},
        }
        self.claims[name] = NodeClaimView.parse(
            {
                "metadata": {
                    "name": name,
                    "labels": {NODEPOOL: POOL, INSTANCE_TYPE: itype.name, ZONE: offering.zone},
                    "annotations": {NODEPOOL_HASH_ANNOTATION: PoolPolicy.of(self.pool_json)
                                    .template_hash},
                    "creationTimestamp": format_rfc3339(NOW - 2 * IDLE),
                },
                "spec": {
                    "nodeClassRef": {"group": "updraft.io", "kind": "NodeClass", "name": "k"},
                    "requirements": [
                        {"key": INSTANCE_TYPE, "operator": "In", "values": [itype.name]}
                    ],
                },
                "status": {
                    "nodeName": name,
                    "providerID": f"kwok://{name}",
                    "price": str(offering.price),
                    "capacity": alloc,
                    "allocatable": alloc,
                    "lastPodEventTime": since,
                    "conditions": [
                        {"type": k, "status": "True", "reason": k, "lastTransitionTime": since}
                        for k in ("Launched", "Registered", "Initialized")
                    ],
                },
            }
        )  # fmt: skip
        self.pods[name] = [bind(p, name) for p in pods]
        return name

    def remove(self, name: str) -> None:
        del self.claims[name], self.nodes[name], self.pods[name]


def bind(pod: Mapping[str, Any], node: str) -> dict[str, Any]:
    """``pod`` as bound to ``node`` and running, owned by a ReplicaSet (so it is moved).
    Moved, it keeps its resourceVersion: nothing the simulation reads of it changed."""
    meta = {**pod["metadata"], "resourceVersion": "1",
            "ownerReferences": [{"kind": "ReplicaSet", "name": "b", "uid": "b"}]}  # fmt: skip
    return {**pod, "metadata": meta, "spec": {**pod["spec"], "nodeName": node},
            "status": {"phase": "Running"}}  # fmt: skip


def wasteful_type(
    fleet: Fleet, requests: Resources, zone: str, headroom: float
) -> tuple[InstanceType, Offering]:
    """The cheapest on-demand type the pool allows, in ``zone``, holding ``headroom`` times
    ``requests``."""
    reqs = fleet.pool.template_requirements()
    best: tuple[InstanceType, Offering] | None = None
    for itype in fleet.catalog.instance_types(fleet.pool.kubelet):
        alloc = itype.allocatable
        if itype.requirements.conflict(reqs) is not None:
            continue
        if alloc.cpu < headroom * requests.cpu or alloc.memory < headroom * requests.memory:
            continue
        for o in itype.offerings:
            ok = o.available and o.zone == zone and o.capacity_type == "on-demand"
            if ok and (best is None or o.price < best[1].price):
                best = (itype, o)
    if best is None:
        raise SystemExit(f"no on-demand type holds {headroom:g} x {requests} in {zone}")
    return best


def wasteful_fleet(
    pool_json: dict[str, Any],
    catalog: Catalog,
    pods: Sequence[dict[str, Any]],
    *,
    per_node: int,
    headroom: float = 2.0,
) -> Fleet:
    """``pods`` ``per_node`` to a node, each node oversized by ``headroom`` and on-demand."""
    fleet = Fleet(pool_json, nodepool_from_k8s(pool_json), catalog)
    zones = sorted({o.zone for t in catalog.instance_types() for o in t.offerings})
    for i in range(0, len(pods), per_node):
        group = pods[i : i + per_node]
        requests = sum((pod_from_k8s(p).requests for p in group), Resources())
        fleet.launch(*wasteful_type(fleet, requests, zones[i // per_node % len(zones)], headroom),
                     group)  # fmt: skip
    return fleet


def disruption_pass(fleet: Fleet) -> tuple[Command | None, Cluster]:
    """One pass of the disruption controller over ``fleet``, from the cluster's JSON to the
    command (or none), with the cluster the simulation was told about."""
    policy = PoolPolicy.of(fleet.pool_json)
    candidates, _ = find_candidates(
        claims=fleet.claims,
        nodes=fleet.nodes,
        pods_by_node=fleet.pods,
        pdbs=[],
        policies={POOL: policy},
        pools={POOL: fleet.pool},
        nodeclass_hashes={},
        nominated={},
        now=NOW,
    )
    cluster = Cluster(
        views=[node_view(n, fleet.pods[name]) for name, n in fleet.nodes.items()],
        nodepools=[fleet.pool],
        catalog=fleet.catalog,
    )
    room = {
        (POOL, r): allowed(policy.budgets, reason=r, total=len(fleet.claims), disrupting=0, now=NOW)
        for r in REASONS
    }
    command, _ = methods.decide(candidates, room, cluster)
    return command, cluster


def apply(fleet: Fleet, command: Command, cluster: Cluster) -> None:
    """Carry ``command`` out: its candidates' pods go where the simulation puts them, each
    replacement launches as its first type at that type's cheapest admitted offering."""
    raw = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p
           for c in command.candidates for p in fleet.pods[c.node_name]}  # fmt: skip
    result = methods.moves(cluster, command)
    for c in command.candidates:
        fleet.remove(c.name)
    for pod, node in result.placed:
        fleet.pods[node].append(bind(raw[pod.key], node))
    for plan in command.replacements:
        itype = plan.instance_types[0]
        offering = itype.cheapest(plan.requirements)
        assert offering is not None, f"{itype.name} has no offering for {plan.requirements}"
        fleet.launch(itype, offering, [raw[p.key] for p in plan.pods])


def settle(fleet: Fleet, limit: int = MAX_COMMANDS) -> dict[str, Any]:
    """Run the methods to their fixed point on ``fleet`` (at most ``limit`` commands); what
    it took."""
    before, nodes_before = fleet.price, len(fleet.claims)
    by_method: Counter[str] = Counter()
    start = time.perf_counter()
    settled = False
    for _ in range(limit):
        command, cluster = disruption_pass(fleet)
        if command is None:
            settled = True
            break
        by_method[f"{command.method}: {command.decision}"] += 1
        apply(fleet, command, cluster)
        if sum(by_method.values()) % 25 == 0:
            print(f"settling: {dict(by_method)}, ${fleet.price:.2f}/h", file=sys.stderr)
    return {
        "nodes_before": nodes_before,
        "price_before": round(before, 4),
        "nodes_after": len(fleet.claims),
        "price_after": round(fleet.price, 4),
        "commands": dict(sorted(by_method.items())),
        "fixed_point": settled,
        "seconds": round(time.perf_counter() - start, 1),
    }


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best-of-``repeat`` wall and CPU seconds of ``fn()``."""
    wall = cpu = math.inf
    for _ in range(repeat):
        gc.collect()
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - w), min(cpu, time.process_time() - c)
    return wall, cpu


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _cost(scenario: str, fleet: Fleet, report: dict[str, Any], fresh: float, n: int) -> JSON:
    return {
        "pool": scenario,
        **report,
        "fresh_nodes": n,
        "fresh_price": round(fresh, 4),
        "ratio_to_fresh": round(fleet.price / fresh, 3),
        "goal_ratio": 1.05,
    }


def run(
    *,
    nodes: int,
    per_node: int,
    seed: int,
    repeat: int,
    pools: Sequence[str] = tuple(COST_POOLS),
    limit: int = MAX_COMMANDS,
) -> dict[str, Any]:
    catalog = Catalog.aws()
    catalog.instance_types()  # build once, outside the timings
    pods = pod_objects(nodes * per_node, seed, kinds=("plain",))
    parsed = [pod_from_k8s(p) for p in pods]
    out: dict[str, Any] = {
        "benchmark": "disruption",
        "seed": seed,
        "nodes": nodes,
        "pods": len(pods),
        "instance_types": len(catalog.instance_types()),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if "decision" not in pools and not any(p in COST_POOLS for p in pools):
        raise SystemExit(f"--pools: expected some of decision, {', '.join(COST_POOLS)}")
    out["cost"] = []
    if "decision" in pools or FULL in pools:
        _decision(out, catalog, pods, parsed, per_node=per_node, repeat=repeat, limit=limit)
    for scenario, requirements in COST_POOLS.items():
        if not requirements or scenario not in pools:
            continue  # the full catalog: settled with the decision
        fleet = wasteful_fleet(pool_object(*requirements), catalog, pods, per_node=per_node)
        packed = simulate(parsed, nodepools=[fleet.pool], catalog=catalog)
        out["cost"].append(
            _cost(scenario, fleet, settle(fleet, limit), packed.price, len(packed.new_claims))
        )
    return out


def _decision(
    out: dict[str, Any],
    catalog: Catalog,
    pods: Sequence[dict[str, Any]],
    parsed: Sequence[Pod],
    *,
    per_node: int,
    repeat: int,
    limit: int,
) -> None:
    """The decision figures, and the full catalog's fixed point they are timed around."""
    full = pool_object()
    fleet = wasteful_fleet(full, catalog, pods, per_node=per_node)
    fresh: list[SimulationResult] = []
    base, base_cpu = timed(
        lambda: fresh.append(simulate(parsed, nodepools=[fleet.pool], catalog=catalog)), repeat
    )
    first, first_cpu = timed(lambda: disruption_pass(fleet), repeat)
    first_command, _ = disruption_pass(fleet)
    print(f"first pass: {_ms(first_cpu)} ms CPU, baseline {_ms(base_cpu)} ms CPU", file=sys.stderr)
    settled = settle(fleet, limit)
    last, last_cpu = timed(lambda: disruption_pass(fleet), repeat)
    out["decision"] = {
        "pool": FULL,
        "baseline": "provisioning simulate of the same pods, empty cluster",
        "baseline_ms": _ms(base),
        "baseline_cpu_ms": _ms(base_cpu),
        "first_pass_ms": _ms(first),
        "first_pass_cpu_ms": _ms(first_cpu),
        "first_pass_cpu_ratio_to_baseline": round(first_cpu / base_cpu, 3),
        "first_command": first_command.describe()[:200] if first_command else None,
        "settled_pass_ms": _ms(last),
        "settled_pass_cpu_ms": _ms(last_cpu),
        "settled_pass_cpu_ratio_to_baseline": round(last_cpu / base_cpu, 3),
        "settled_nodes": len(fleet.claims),
        "goal_ms": 2000,
    }
    out["cost"].append(_cost(FULL, fleet, settled, fresh[0].price, len(fresh[0].new_claims)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--pods-per-node", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="timed passes; the best counts")
    parser.add_argument(
        "--pools",
        default=",".join(("decision", *COST_POOLS)),
        help="what to run: decision (with the full catalog's fixed point) and cost pools",
    )
    parser.add_argument(
        "--max-commands",
        type=int,
        default=MAX_COMMANDS,
        help="stop a fixed point after this many commands (fixed_point says if it got there)",
    )
    args = parser.parse_args()
    pools = [p for p in args.pools.split(",") if p]
    print(json.dumps(run(nodes=args.nodes, per_node=args.pods_per_node, seed=args.seed,
                         repeat=args.repeat, pools=pools, limit=args.max_commands)))  # fmt: skip


if __name__ == "__main__":
    main()
