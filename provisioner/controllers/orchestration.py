"""Carrying out a disruption command, and picking up after a crash.

Owns the command's steps on the cluster: annotate each candidate NodeClaim with the command's
id and reason (``DisruptionReason`` condition too) and taint its node
``updraft.io/disrupted:NoSchedule``; create the replacement NodeClaims (annotated with the id
and the nodes they replace) and wait until every one is Initialized; then delete the candidate
NodeClaims (the termination flow drains and removes the nodes). Any failure before the delete
(a replacement that cannot be created, is deleted, or does not initialize in time) abandons
the command: the candidates are untainted and un-annotated, and replacements that never
initialized are deleted (they hold no pods).

Everything a command is lives on the cluster, so a restarted controller ``recover``s: a
candidate whose replacements all exist and are Initialized is deleted (the command resumes);
any other annotated candidate is rolled back, and a replacement already made stays an ordinary
node (the next decision counts it, so nothing is launched twice). A ``disrupted`` taint on a
node whose NodeClaim is not deleting and that no running command owns is removed by
termination's ``release_orphans``, which asks ``owned``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Mapping

import aiohttp

from kube import JSON, NODES, Api, ApiError, NotFoundError, ObjectMeta
from provisioner.claims import NodeClaimView
from provisioner.controllers.lifecycle import Lifecycle
from provisioner.controllers.patching import patch_claim_status
from provisioner.controllers.provisioning import create_claim
from provisioner.controllers.state import ClusterState
from provisioner.disruption.methods import Command
from provisioner.errors import CommandAbandonedError
from provisioner.objects import NODECLAIMS, disrupted_taints

__all__ = [
    "COMMAND_ANNOTATION",
    "REASON_ANNOTATION",
    "REPLACES_ANNOTATION",
    "Orchestrator",
]

log = logging.getLogger(__name__)

COMMAND_ANNOTATION = "updraft.io/disruption-command"
"""The id of the command a candidate or replacement NodeClaim belongs to."""
REASON_ANNOTATION = "updraft.io/disruption-reason"
"""On a candidate: why it is being disrupted (Empty, Drifted, Underutilized)."""
REPLACES_ANNOTATION = "updraft.io/disruption-replaces"
"""On a replacement: the nodes it replaces, comma-separated."""
_ERRORS = (ApiError, aiohttp.ClientError, OSError, TimeoutError)


class Orchestrator:
    def __init__(
        self,
        api: Api,
        state: ClusterState,
        lifecycle: Lifecycle,
        *,
        pool_object: Callable[[str], JSON | None],
        replacement_timeout: float,
        poll: float = 0.5,
    ) -> None:
        self._api = api
        self._state = state
        self._lifecycle = lifecycle
        self._pool_object = pool_object
        self._timeout = replacement_timeout
        self._poll = poll
        self.owned: set[str] = set()
        """Candidate NodeClaims of the command running now."""

    async def execute(self, command: Command) -> list[str]:
        """Run ``command`` to the deletion of its candidates; the replacements' names.
        ``CommandAbandonedError`` when it stopped first (the candidates are restored then)."""
        cid = uuid.uuid4().hex[:10]
        names = [c.name for c in command.candidates]
        self.owned = set(names)
        made: list[str] = []
        try:
            try:
                for c in command.candidates:
                    await self._mark(c.claim, cid, command)
                replaces = ",".join(c.node_name for c in command.candidates)
                for plan in command.replacements:
                    pool = self._pool_object(plan.nodepool)
                    if pool is None:
                        raise CommandAbandonedError(f"NodePool {plan.nodepool} is gone")
                    made.append(
                        await create_claim(
                            self._api,
                            self._state,
                            self._lifecycle,
                            plan,
                            pool=pool,
                            batch=cid,
                            annotations={COMMAND_ANNOTATION: cid, REPLACES_ANNOTATION: replaces},
                        )
                    )
                await self._initialized(made)
            except (CommandAbandonedError, *_ERRORS) as e:
                await self._abandon(names, made)
                raise CommandAbandonedError(str(e)) from None
            for name in names:
                with contextlib.suppress(NotFoundError):
                    deleted = await self._api.delete(NODECLAIMS, name)
                    if deleted.get("kind") == "NodeClaim":
                        self._state.note(deleted)
            return made
        finally:
            self.owned = set()

    async def _initialized(self, names: list[str]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        while True:
            waiting = []
            for name in names:
                claim = self._state.claim(name)
                if claim is None or claim.meta.deleting:
                    raise CommandAbandonedError(f"replacement {name} was deleted")
                if not claim.is_true("Initialized"):
                    waiting.append(name)
            if not waiting:
                return
            if loop.time() >= deadline:
                raise CommandAbandonedError(
                    f"replacements {', '.join(waiting)} not initialized in {self._timeout:g} s"
                )
            await asyncio.sleep(self._poll)

    async def _mark(self, claim: NodeClaimView, cid: str, command: Command) -> None:
        patch = {
            "metadata": {
                "annotations": {COMMAND_ANNOTATION: cid, REASON_ANNOTATION: command.reason}
            }
        }
        self._state.note(await self._api.patch(NODECLAIMS, claim.name, patch))
        await self._reason(claim.name, True, command.reason, command.describe())
        await self._taint(claim.node_name, add=True)

    async def _reason(self, name: str, status: bool, reason: str, message: str) -> None:
        claim = self._state.claim(name)
        if claim is None:
            return
        change = ("DisruptionReason", status, reason, message)
        try:
            await patch_claim_status(self._api, self._state, claim, {}, change)
        except _ERRORS as e:
            log.info("NodeClaim %s: DisruptionReason not written (%s); next pass", name, e)

    async def _taint(self, node_name: str, *, add: bool) -> None:
        node = self._state.nodes.store.get(("", node_name))
        if node is None:
            return
        taints = disrupted_taints(node, present=add)
        if taints is None:
            return
        rv = ObjectMeta.of(node).resource_version
        await self._api.patch(
            NODES, node_name, {"metadata": {"resourceVersion": rv}, "spec": {"taints": taints}}
        )

    async def _abandon(self, candidates: list[str], replacements: list[str]) -> None:
        for name in replacements:
            claim = self._state.claim(name)
            if claim is not None and not claim.is_true("Initialized"):
                with contextlib.suppress(*_ERRORS):
                    await self._api.delete(NODECLAIMS, name)
        for name in candidates:
            claim = self._state.claim(name)
            if claim is not None:
                await self.rollback(claim)

    async def rollback(self, claim: NodeClaimView) -> None:
        """Untaint and un-annotate a candidate whose command will not go on."""
        try:
            await self._taint(claim.node_name, add=False)
            patch = {
                "metadata": {"annotations": {COMMAND_ANNOTATION: None, REASON_ANNOTATION: None}}
            }
            self._state.note(await self._api.patch(NODECLAIMS, claim.name, patch))
        except NotFoundError:
            return
        except _ERRORS as e:
            log.warning("NodeClaim %s: rollback not finished (%s); next pass", claim.name, e)
            return
        await self._reason(claim.name, False, "Abandoned", "the disruption command was abandoned")

    async def recover(self, claims: Mapping[str, NodeClaimView]) -> None:
        """Resume or roll back commands nobody runs. (Stale ``disrupted`` taints on nodes no
        command owns are termination's ``release_orphans``' to remove: ``owned`` says which.)"""
        replacements: dict[str, list[NodeClaimView]] = {}
        for claim in claims.values():
            cid = claim.meta.annotations.get(COMMAND_ANNOTATION)
            if cid and REPLACES_ANNOTATION in claim.meta.annotations:
                replacements.setdefault(cid, []).append(claim)
        for claim in claims.values():
            cid = claim.meta.annotations.get(COMMAND_ANNOTATION)
            if not cid or REPLACES_ANNOTATION in claim.meta.annotations:
                continue
            if claim.meta.deleting or claim.name in self.owned:
                continue
            mine = replacements.get(cid, [])
            if mine and all(r.is_true("Initialized") and not r.meta.deleting for r in mine):
                log.info("NodeClaim %s: resuming command %s (replacements ready)", claim.name, cid)
                with contextlib.suppress(NotFoundError):
                    self._state.note(await self._api.delete(NODECLAIMS, claim.name))
                continue
            log.info("NodeClaim %s: rolling back command %s nobody runs", claim.name, cid)
            await self.rollback(claim)
