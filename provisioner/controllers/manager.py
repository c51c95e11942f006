"""The provisioner controller: the parts wired together, acting only while it leads.

Owns the process-level loop: informers start at once (followers keep warm caches); leader
election on a Lease decides who acts, so two replicas never both create NodeClaims; while
leading, a batch loop (``batching`` -> ``provisioning``) and a reconcile loop (NodeClaim
``lifecycle``, NodePool status) run, and both stop the moment the lease is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from kits import cancel_and_wait
from kube import Api, Event, LeaderElector, LeaderSettings, ObjectMeta
from provisioner.cloud.provider import CloudProvider
from provisioner.controllers import metrics
from provisioner.controllers.batching import Batcher
from provisioner.controllers.disruption import (
    DisruptionController,
    DisruptionSettings,
    node_states,
)
from provisioner.controllers.lifecycle import Lifecycle
from provisioner.controllers.nodepools import NodePoolController, PoolUsage, pool_of, pool_prices
from provisioner.controllers.provisioning import Provisioning
from provisioner.controllers.state import ClusterState
from provisioner.controllers.termination import Termination
from provisioner.errors import InvalidFieldError
from provisioner.objects import claim_view, is_provisionable, node_view
from provisioner.resources import Resources

__all__ = ["ProvisionerController", "ProvisionerSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProvisionerSettings:
    batch_idle: float = 1.0
    """Seconds without a new pending pod that close a batch: a Deployment's burst of pods is
    created within milliseconds, so 1 s gathers it without delaying a lone pod much."""
    batch_max: float = 10.0
    """A batch never stays open longer, so a steady trickle of pods still gets nodes."""
    registration_timeout: float = 900.0
    """A launched NodeClaim whose node has not registered by then is deleted with its
    instance (Karpenter's 15 min: long enough for a slow boot, short enough to retry)."""
    resync: float = 10.0
    """Seconds between re-examinations of pods that stay pending (limits freed, pools
    fixed): Karpenter re-queues pending pods every 10 s too."""
    event_repeat: float = 600.0
    """Seconds between refreshes of an Event that stays true (a pod still unprovisionable, a
    drain still blocked): kube-apiserver expires Events after 1 h, so 10 min keeps one present
    and current for one PATCH per pod per 10 min."""
    reconcile_interval: float = 1.0
    """Seconds between NodeClaim lifecycle and NodePool status passes (cheap: local caches)."""
    lease_namespace: str = "updraft-system"
    lease_name: str = "updraft-provisioner"
    identity: str = "updraft-provisioner"
    leader: LeaderSettings = field(default_factory=LeaderSettings)
    disruption: DisruptionSettings = field(default_factory=DisruptionSettings)


def _named(keys: Iterable[str], first: int = 5) -> str:
    """``: a, b, c and 4 more`` for the log line, or "" when there are none."""
    names = list(keys)
    if not names:
        return ""
    more = f" and {len(names) - first} more" if len(names) > first else ""
    return ": " + ", ".join(names[:first]) + more


class ProvisionerController:
    def __init__(self, api: Api, provider: CloudProvider, settings: ProvisionerSettings) -> None:
        self._api = api
        self._provider = provider
        self._settings = settings
        self._batcher = Batcher(idle=settings.batch_idle, maximum=settings.batch_max)
        self._wake = asyncio.Event()
        self.state = ClusterState(
            api, on_pod=self._on_pod, on_nodepool=self._on_nodepool, on_change=self._on_change
        )
        self.pools = NodePoolController(api, self.state, provider.catalog)
        self.termination = Termination(
            api,
            self.state,
            provider,
            event_repeat=settings.event_repeat,
            # the nodes an in-flight disruption command tainted are its own, not orphans
            owned=lambda: self.disruption.orchestrator.owned,
        )
        self.lifecycle = Lifecycle(
            api,
            self.state,
            provider,
            pool=self.pools.pool,
            registration_timeout=settings.registration_timeout,
            termination=self.termination,
        )
        self.provisioning = Provisioning(
            api,
            self.state,
            pools=self.pools,
            lifecycle=self.lifecycle,
            catalog=provider.catalog,
            event_repeat=settings.event_repeat,
        )
        self.disruption = DisruptionController(
            api,
            self.state,
            pools=self.pools,
            lifecycle=self.lifecycle,
            catalog=provider.catalog,
            settings=settings.disruption,
        )
        self._leading = asyncio.Event()
        self._lost = asyncio.Event()
        self.elector = LeaderElector(
            api,
            namespace=settings.lease_namespace,
            name=settings.lease_name,
            identity=settings.identity,
            settings=settings.leader,
            on_change=self._on_leader_change,
        )
        self._task: asyncio.Task[None] | None = None

    # -- events ----------------------------------------------------------------------------

    async def _on_pod(self, event: Event) -> None:
        if event.type != "DELETED" and is_provisionable(event.object):
            meta = ObjectMeta.of(event.object)
            self._batcher.trigger(meta.uid or meta.key)

    async def _on_nodepool(self, event: Event) -> None:
        self._wake.set()
        if self.provisioning.pending():
            self._batcher.trigger(("nodepool", event.type, id(event.object)))

    async def _on_change(self, event: Event) -> None:
        self._wake.set()

    def _on_leader_change(self, leading: bool) -> None:
        metrics.LEADER.set(1 if leading else 0)
        if leading:
            self._lost.clear()
            self._leading.set()
        else:
            self._leading.clear()
            self._lost.set()

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        self.state.start()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="provisioner")

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self.disruption.close()
        await self.lifecycle.close()
        await self.elector.close()
        await self.state.close()

    def synced(self) -> bool:
        return self.state.synced()

    async def _run(self) -> None:
        await self.state.wait_synced()
        self.elector.start()
        while True:
            await self._leading.wait()
            log.info("leading: provisioning")
            workers = [
                asyncio.create_task(self._batch_loop(), name="provisioner batches"),
                asyncio.create_task(self._reconcile_loop(), name="provisioner reconcile"),
                asyncio.create_task(self._resync_loop(), name="provisioner resync"),
                asyncio.create_task(self.disruption.run(), name="provisioner disruption"),
            ]
            try:
                await self._lost.wait()
            finally:
                await cancel_and_wait(*workers)
                await self.disruption.close()
                await self.lifecycle.close()
            log.info("lease lost: provisioning stopped")

    async def _batch_loop(self) -> None:
        while True:
            gathered = await self._batcher.wait()
            try:
                result = await self.provisioning.run_pass()
            except Exception:
                log.exception("provisioning pass failed")
                continue
            if result is not None:
                log.info(
                    "batch of %d triggers: %d new NodeClaims, %d pods placed on existing or "
                    "in-flight nodes, %d pods unschedulable%s",
                    len(gathered),
                    len(result.new_claims),
                    len(result.placed),
                    len(result.unschedulable),
                    _named(pod.key for pod, _ in result.unschedulable),
                )

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.resync)
            if self.provisioning.refresh_pending():
                self._batcher.trigger(("resync", asyncio.get_running_loop().time()))

    async def _reconcile_loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.lifecycle.tick()
                nodes = {ObjectMeta.of(n).name: n for n in self.state.nodes.store.values()}
                states = node_states(self.state.claims(), nodes)
                await self.pools.reconcile_all(self._usage(), states)
            except Exception:
                log.exception("reconcile pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.reconcile_interval)

    def _usage(self) -> dict[str, PoolUsage]:
        """Per pool: nodes (registered or in flight) and their capacity, as limits count it, and
        what its launched NodeClaims cost per hour."""
        count: dict[str, int] = defaultdict(int)
        capacity: dict[str, Resources] = defaultdict(Resources)
        node_names = set()
        for node in self.state.nodes.store.values():
            name = ObjectMeta.of(node).name
            node_names.add(name)
            pool = pool_of(node)
            if pool is None:
                continue
            try:
                view = node_view(node, ())
            except InvalidFieldError:
                continue
            count[pool] += 1
            capacity[pool] += view.capacity
        for name, claim in self.state.claims().items():
            pool = claim.pool
            if pool is None or name in node_names:
                continue
            if claim.meta.deleting:
                continue
            try:
                view = claim_view(claim, self._provider.catalog)
            except InvalidFieldError:
                continue
            count[pool] += 1
            capacity[pool] += view.capacity
        prices = pool_prices(self.state.claims().values())
        return {p: (count[p], capacity[p], prices.get(p, 0.0)) for p in count}
