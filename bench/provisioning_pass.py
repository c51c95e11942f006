"""Benchmark one provisioning pass on a real control plane: 300 pending pods in, NodeClaims out.

The figure is the issue's "work between batch close and the last claim created" (the
``updraft_provisioner_pass_duration_seconds`` histogram: list, parse, simulate, create every
NodeClaim), next to the simulation alone and the whole pass including the Nominated Events
that follow the claims. The pods are created first and left for kube-scheduler to mark
Unschedulable, then the controller starts in this process, so its first batch holds all of
them and its first pass is the one measured. Every round cleans up after itself (pods,
NodeClaims through the controller's own termination, nodes, pool). Prints one JSON object.

Needs a control plane with Updraft's CRDs: ``python -m tests.cluster up`` (from the repository
root; it prints the kubeconfig) and ``kubectl apply --server-side -k manifests/crds``.

Run: ``.venv/bin/python -m bench.provisioning_pass [--kubeconfig .cache/cluster/kubeconfig]
[--pods 300] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from kube import JSON, NODES, PODS, Api, NotFoundError, Resource, connect
from provisioner.cloud.kwok import KwokProvider
from provisioner.controllers import metrics
from provisioner.controllers.manager import ProvisionerController, ProvisionerSettings
from provisioner.controllers.provisioning import bounded
from provisioner.objects import NODECLAIMS, NODECLASSES, NODEPOOLS, POOL_LABEL

NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts", namespaced=True)
TYPES = ("c5.large", "m5.large", "m5.xlarge")
"""The seed pool of examples/nodepool-basic.yaml: 300 x 1 cpu makes 100 m5.xlarge claims, the
most creates per pod of any menu."""
LABEL = "updraft.io/bench"


def _in(key: str, *values: str) -> JSON:
    return {"key": key, "operator": "In", "values": list(values)}


def _pool(name: str, tag: str) -> JSON:
    return {
        "apiVersion": "updraft.io/v1alpha1",
        "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {"labels": {LABEL: tag}},
                "spec": {
                    "nodeClassRef": {"group": "updraft.io", "kind": "NodeClass", "name": name},
                    "requirements": [
                        _in("node.kubernetes.io/instance-type", *TYPES),
                        _in("karpenter.sh/capacity-type", "on-demand"),
                    ],
                    "taints": [{"key": LABEL, "value": tag, "effect": "NoSchedule"}],
                },
            }
        },
    }


def _pod(name: str, tag: str) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {
            "nodeSelector": {LABEL: tag},
            "tolerations": [{"key": LABEL, "operator": "Equal", "value": tag}],
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "pause",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": {"cpu": "1"}},
                }
            ],
        },
    }


def _unschedulable(pod: JSON) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable":
            return True
    return False


async def _until(check: Any, within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


def _sample(name: str) -> float:
    return metrics.REGISTRY.get_sample_value(name) or 0.0


async def one_round(api: Api, pods: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    name = f"bench-{tag}"
    await api.create(
        NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )
    await api.create(
        NODECLASSES,
        {"apiVersion": "updraft.io/v1alpha1", "kind": "NodeClass", "metadata": {"name": name},
         "spec": {"zones": ["us-east-1a", "us-east-1b", "us-east-1c"]}},
    )  # fmt: skip
    await api.create(NODEPOOLS, _pool(name, tag))

    async def service_account() -> bool:  # pods are refused until it exists
        try:
            await api.get(SERVICEACCOUNTS, "default", name)
        except NotFoundError:
            return False
        return True

    await _until(service_account, 60, "the namespace's default ServiceAccount")
    await bounded(api.create(PODS, _pod(f"p-{i}", tag), name) for i in range(pods))

    async def all_unschedulable() -> bool:
        items, _ = await api.list(PODS, name)
        return len(items) == pods and all(_unschedulable(p) for p in items)

    await _until(all_unschedulable, 120, f"{pods} pods marked Unschedulable")
    settings = ProvisionerSettings(lease_namespace=name, lease_name=name, identity=name)
    controller = ProvisionerController(api, KwokProvider(api), settings)
    passes: list[tuple[float, float, int]] = []
    run_pass = controller.provisioning.run_pass

    async def timed() -> Any:
        started, cpu = time.perf_counter(), time.process_time()
        result = await run_pass()
        passes.append(
            (
                time.perf_counter() - started,
                time.process_time() - cpu,
                len(result.new_claims) if result else 0,
            )
        )
        return result

    controller.provisioning.run_pass = timed  # type: ignore[method-assign]
    before = {
        k: _sample(f"updraft_provisioner_{k}_sum") for k in ("pass_duration_seconds",
                                                             "scheduling_duration_seconds")
    }  # fmt: skip
    controller.start()
    try:

        async def passed() -> bool:
            return bool(passes)

        await _until(passed, 120, "the first provisioning pass")
        first_pass, first_cpu, claims = passes[0]
        after = {k: _sample(f"updraft_provisioner_{k}_sum") - v for k, v in before.items()}
        # Clean up through the controller: it drains and deletes what it launched.
        await api.delete(NAMESPACES, name)
        items, _ = await api.list(NODECLAIMS, label_selector=f"{POOL_LABEL}={name}")
        for claim in items:
            with contextlib.suppress(NotFoundError):
                await api.delete(NODECLAIMS, claim["metadata"]["name"])

        async def claims_gone() -> bool:
            left, _ = await api.list(NODECLAIMS, label_selector=f"{POOL_LABEL}={name}")
            return not left

        with contextlib.suppress(TimeoutError):  # then by hand, below
            await _until(claims_gone, 120, "the round's NodeClaims deleted")
    finally:
        await controller.close()
        left, _ = await api.list(NODECLAIMS, label_selector=f"{POOL_LABEL}={name}")
        for claim in left:  # the controller did not get to them: let go by hand
            with contextlib.suppress(NotFoundError):
                await api.patch(
                    NODECLAIMS, claim["metadata"]["name"], {"metadata": {"finalizers": []}}
                )
                await api.delete(NODECLAIMS, claim["metadata"]["name"])
        nodes, _ = await api.list(NODES, label_selector=f"{POOL_LABEL}={name}")
        for node in nodes:
            with contextlib.suppress(NotFoundError):
                await api.patch(NODES, node["metadata"]["name"], {"metadata": {"finalizers": []}})
                await api.delete(NODES, node["metadata"]["name"])
        for resource in (NODEPOOLS, NODECLASSES):
            with contextlib.suppress(NotFoundError):
                await api.delete(resource, name)
    return {
        "claims": claims,
        "pass_seconds": round(after["pass_duration_seconds"], 3),
        "scheduling_seconds": round(after["scheduling_duration_seconds"], 3),
        "pass_with_events_seconds": round(first_pass, 3),
        "pass_with_events_cpu_seconds": round(first_cpu, 3),
    }


async def run(kubeconfig: str, pods: int, rounds: int) -> dict[str, Any]:
    client = await connect(kubeconfig)
    try:
        api = Api(client)
        results = [await one_round(api, pods) for _ in range(rounds)]
    finally:
        await client.close()
    return {
        "benchmark": "provisioning_pass",
        "pods": pods,
        "instance_types": list(TYPES),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "rounds": results,
        "median_pass_seconds": statistics.median(r["pass_seconds"] for r in results),
        "median_pass_with_events_seconds": statistics.median(
            r["pass_with_events_seconds"] for r in results
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kubeconfig", default=str(Path(".cache/cluster/kubeconfig")))
    parser.add_argument("--pods", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not Path(args.kubeconfig).is_file():  # `make bench` without a control plane
        reason = f"no control plane: {args.kubeconfig} missing (python -m tests.cluster up)"
        print(json.dumps({"benchmark": "provisioning_pass", "skipped": reason}))
        return
    print(json.dumps(asyncio.run(run(args.kubeconfig, args.pods, args.rounds))))


if __name__ == "__main__":
    main()
