"""The provisioner's view of the cluster: one informer per kind it reads, plus its own writes.

Owns the informers (Pods, Nodes, DaemonSets, NodePools, NodeClaims, NodeClasses), the parsed
``NodeClaimView`` of every NodeClaim (built once, when the informer hands the object over), and
an overlay of the NodeClaims this process just wrote, so a pass that runs before the watch
echoes a write back still sees it (a NodeClaim created a moment ago is in flight, not missing,
which is what keeps the next batch from launching it again). A NodeClaim that does not parse is
kept aside in ``rejected`` with the error naming its field, for the leader to report; every
other claim is unaffected. It also notes, from every Pod event, which nodes a pod was bound to
or left (``take_pod_moves``), so a pod that comes and goes between two passes still counts as
a pod event there. It must not decide anything.

resourceVersions are opaque, so the overlay never orders them. A watch delivers every version
of an object in order, so our write is caught up with exactly when the informer delivers its
version, or when a list issued after the write (a re-list) has been applied.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from dataclasses import dataclass

from kube import JSON, NODES, PODS, Api, Event, Handler, Informer, key_of, name_of, version_of
from provisioner.claims import NodeClaimView
from provisioner.errors import InvalidFieldError
from provisioner.objects import DAEMONSETS, NODECLAIMS, NODECLASSES, NODEPOOLS

__all__ = ["ClusterState", "Rejected"]

log = logging.getLogger(__name__)

_RECENT = 16
"""Versions of each NodeClaim remembered as delivered: our write is answered within a few
events of the watch, so 16 covers what can arrive between a write and its ``note``."""


@dataclass(frozen=True)
class Rejected:
    """A NodeClaim (as read) that does not parse, and why."""

    raw: JSON
    error: InvalidFieldError


@dataclass(frozen=True)
class _Written:
    view: NodeClaimView
    relists: int
    """The informer's re-list count when we wrote: a re-list after it has seen our write."""


class ClusterState:
    def __init__(
        self,
        api: Api,
        *,
        on_pod: Handler | None = None,
        on_nodepool: Handler | None = None,
        on_change: Handler | None = None,
    ) -> None:
        self._views: dict[str, NodeClaimView] = {}
        """Every NodeClaim the informer holds that parses, by name."""
        self.rejected: dict[str, Rejected] = {}
        """Every NodeClaim the informer holds that does not parse, by name."""
        self._written: dict[str, _Written] = {}
        """NodeClaims as this process last wrote them, until the informer catches up."""
        self._delivered: dict[str, deque[str]] = {}
        """The last resourceVersions the informer delivered, per NodeClaim."""
        self._pod_nodes: dict[tuple[str, str], str] = {}
        """Each bound, unfinished pod's node, by pod key."""
        self._pod_moves: set[str] = set()
        """Nodes a pod was bound to or left since ``take_pod_moves`` was last called."""
        self._on_pod_event = on_pod
        self.pods = Informer(api, PODS, handler=self._on_pod)
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

    async def _on_pod(self, event: Event) -> None:
        self.apply_pod(event, initial=not self.pods.synced.is_set())
        if self._on_pod_event is not None:
            await self._on_pod_event(event)

    def apply_pod(self, event: Event, *, initial: bool = False) -> None:
        """Take in one Pod event: note the nodes whose pods changed (a pod bound to one, or gone
        from one: deleted, finished or bound elsewhere), however briefly the pod stayed. The
        first list (``initial``) is what is there already, not a change."""
        key = key_of(event.object)
        node = None if event.type == "DELETED" else _bound_node(event.object)
        old = self._pod_nodes.pop(key, None)
        if node is not None:
            self._pod_nodes[key] = node
        if old != node and not initial:
            self._pod_moves.update(n for n in (old, node) if n is not None)

    def take_pod_moves(self) -> set[str]:
        """The nodes whose pods changed since the last call."""
        moves, self._pod_moves = self._pod_moves, set()
        return moves

    async def _on_claim(self, event: Event) -> None:
        self.apply(event)
        if self._on_change is not None:
            await self._on_change(event)

    def apply(self, event: Event) -> None:
        """Take in one NodeClaim event as the informer delivers it."""
        name = name_of(event.object)
        if event.type == "DELETED":
            self._views.pop(name, None)
            self.rejected.pop(name, None)
            self._written.pop(name, None)
            self._delivered.pop(name, None)
            return
        view = self._parse(event.object)
        version = version_of(event.object)
        if view is not None:
            self._views[name] = view
            self.rejected.pop(name, None)
        else:
            self._views.pop(name, None)
        self._delivered.setdefault(name, deque(maxlen=_RECENT)).append(version)
        mine = self._written.get(name)
        if mine is not None and (
            mine.view.meta.resource_version == version or self.nodeclaims.relists > mine.relists
        ):
            del self._written[name]

    def _parse(self, obj: JSON) -> NodeClaimView | None:
        name = name_of(obj)
        try:
            return NodeClaimView.parse(obj)
        except InvalidFieldError as e:
            if name not in self.rejected:
                log.warning("NodeClaim %s does not parse, left alone: %s", name or "?", e)
            self.rejected[name] = Rejected(obj, e)
            return None

    def note(self, claim: JSON) -> NodeClaimView | None:
        """Remember a NodeClaim as the API server returned it from our write; its view, or
        None when even our own write does not parse (then it is in ``rejected``)."""
        view = self._parse(claim)
        if view is None:
            return None
        name = view.name
        if view.meta.deleting and not view.meta.finalizers:
            # Our write took the last finalizer off: the object is gone, and its DELETED
            # event may have come already; remembering it would keep it here forever.
            self._written.pop(name, None)
        elif view.meta.resource_version not in self._delivered.get(name, ()):
            self._written[name] = _Written(view, self.nodeclaims.relists)
        return view

    def forget(self, name: str) -> None:
        self._written.pop(name, None)

    def claims(self) -> dict[str, NodeClaimView]:
        """Every NodeClaim that parses, our write winning until the informer has caught up."""
        out = dict(self._views)
        for name, mine in self._written.items():
            out[name] = mine.view
        return out

    def claim(self, name: str) -> NodeClaimView | None:
        mine = self._written.get(name)
        return mine.view if mine is not None else self._views.get(name)

    def nodeclass(self, name: str) -> JSON | None:
        return self.nodeclasses.store.get(("", name))

    def pods_by_node(self) -> dict[str, list[JSON]]:
        """Pods bound to each node, finished ones (Succeeded, Failed) left out."""
        out: dict[str, list[JSON]] = defaultdict(list)
        for pod in self.pods.store.values():
            node = _bound_node(pod)
            if node is not None:
                out[node].append(pod)
        return out


def _bound_node(pod: JSON) -> str | None:
    """The node ``pod`` holds room on: bound and not finished (as ``pods_by_node`` counts)."""
    node = (pod.get("spec") or {}).get("nodeName")
    if not node or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return None
    return str(node)
