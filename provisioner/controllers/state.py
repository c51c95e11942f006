"""The provisioner's view of the cluster: one informer per kind it reads, plus its own writes.

Owns the informers (Pods, Nodes, DaemonSets, NodePools, NodeClaims, NodeClasses) and an overlay
of the objects this process just wrote, so a pass that runs before the watch echoes a write
back still sees it (a NodeClaim created a moment ago is in flight, not missing, which is what
keeps the next batch from launching it again). It must not decide anything.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from kube import JSON, NODES, PODS, Api, Event, Informer
from kube.informer import Handler
from provisioner.objects import DAEMONSETS, NODECLAIMS, NODECLASSES, NODEPOOLS

__all__ = ["ClusterState"]


def _rv(obj: Mapping[str, Any]) -> int:
    raw = str((obj.get("metadata") or {}).get("resourceVersion", ""))
    return int(raw) if raw.isdigit() else -1


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


class ClusterState:
    def __init__(
        self,
        api: Api,
        *,
        on_pod: Handler | None = None,
        on_nodepool: Handler | None = None,
        on_change: Handler | None = None,
    ) -> None:
        self._written: dict[str, JSON] = {}
        """NodeClaims as this process last wrote them, until the informer catches up."""
        self.pods = Informer(api, PODS, handler=on_pod)
        self.nodes = Informer(api, NODES, handler=on_change)
        self.daemonsets = Informer(api, DAEMONSETS)
        self.nodepools = Informer(api, NODEPOOLS, handler=on_nodepool)
        self.nodeclaims = Informer(api, NODECLAIMS, handler=self._on_claim)
        self.nodeclasses = Informer(api, NODECLASSES, handler=on_nodepool)
        self._on_change = on_change
        self._all = (
            self.pods,
            self.nodes,
            self.daemonsets,
            self.nodepools,
            self.nodeclaims,
            self.nodeclasses,
        )

    def start(self) -> None:
        for informer in self._all:
            informer.start()

    async def close(self) -> None:
        for informer in self._all:
            await informer.close()

    def synced(self) -> bool:
        return all(i.synced.is_set() for i in self._all)

    async def wait_synced(self) -> None:
        await asyncio.gather(*(i.synced.wait() for i in self._all))

    async def _on_claim(self, event: Event) -> None:
        name = _name(event.object)
        if event.type == "DELETED":
            self._written.pop(name, None)
        else:
            mine = self._written.get(name)
            if mine is not None and _rv(event.object) >= _rv(mine):
                del self._written[name]
        if self._on_change is not None:
            await self._on_change(event)

    def note(self, claim: JSON) -> None:
        """Remember a NodeClaim as the API server returned it from our write."""
        name = _name(claim)
        seen = self.nodeclaims.store.get(("", name))
        if seen is None or _rv(claim) > _rv(seen):
            self._written[name] = claim

    def forget(self, name: str) -> None:
        self._written.pop(name, None)

    def claims(self) -> dict[str, JSON]:
        """Every NodeClaim, our newest write winning over an older informer copy."""
        out = {name: obj for (_, name), obj in self.nodeclaims.store.items()}
        for name, obj in self._written.items():
            seen = out.get(name)
            if seen is None or _rv(obj) > _rv(seen):
                out[name] = obj
        return out

    def claim(self, name: str) -> JSON | None:
        return self.claims().get(name)

    def nodeclass(self, name: str) -> JSON | None:
        return self.nodeclasses.store.get(("", name))

    def pods_by_node(self) -> dict[str, list[JSON]]:
        """Pods bound to each node, finished ones (Succeeded, Failed) left out."""
        out: dict[str, list[JSON]] = defaultdict(list)
        for pod in self.pods.store.values():
            node = (pod.get("spec") or {}).get("nodeName")
            phase = (pod.get("status") or {}).get("phase")
            if node and phase not in ("Succeeded", "Failed"):
                out[str(node)].append(pod)
        return out
