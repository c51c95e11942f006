"""Leader election on a coordination.k8s.io/v1 Lease, so two replicas never both act.

Owns acquiring, renewing and releasing one Lease and exposing whether this process leads.
Expiry is judged by this process's own monotonic clock from when it last saw the lease record
change, never by comparing the holder's `renewTime` with our wall clock, so clock skew between
replicas cannot make two leaders. It must not know what the leader does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from kits import Clock, SystemClock, cancel_and_wait, format_rfc3339
from kube.client import JSON, LEASES, Api
from kube.errors import ApiError, ConflictError, NotFoundError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaderSettings:
    lease_duration: float = 15.0
    """Seconds a follower waits after the last observed renewal before taking over; client-go's
    default, long enough to ride out an apiserver hiccup, short enough to fail over quickly."""
    renew_deadline: float = 10.0
    """A leader that could not renew for this long steps down, before followers may take over
    (must be below `lease_duration`)."""
    retry_period: float = 2.0
    """Seconds between attempts to acquire or renew."""

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "leader election needs 0 < retry_period < renew_deadline < lease_duration, "
                f"got {self.retry_period}, {self.renew_deadline}, {self.lease_duration}"
            )


class LeaderElector:
    """Campaigns for `namespace/name` as `identity`; `is_leader` is set while we lead."""

    def __init__(
        self,
        api: Api,
        *,
        namespace: str,
        name: str,
        identity: str,
        settings: LeaderSettings = LeaderSettings(),
        on_change: Callable[[bool], None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._api = api
        self._namespace = namespace
        self._name = name
        self.identity = identity
        self._settings = settings
        self._on_change = on_change
        self._clock = clock or SystemClock()
        self.is_leader = asyncio.Event()
        self._observed: JSON | None = None
        self._observed_at = 0.0
        self._last_renew = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"leader-election {self._name}")

    async def close(self) -> None:
        """Stop campaigning; a leader stops acting, then releases the lease so a follower takes
        over at once. The release is bounded by `renew_deadline`: if the apiserver is slow,
        followers take over when the lease expires instead, and shutdown does not hang."""
        await cancel_and_wait(self._task)
        self._task = None
        if self.is_leader.is_set():
            # Stop acting before anyone else can lead: never two leaders, even briefly.
            self._set_leader(False)
            with contextlib.suppress(ApiError, aiohttp.ClientError, OSError, TimeoutError):
                async with asyncio.timeout(self._settings.renew_deadline):
                    await self._release()

    def _set_leader(self, leading: bool) -> None:
        if leading == self.is_leader.is_set():
            return
        if leading:
            self.is_leader.set()
        else:
            self.is_leader.clear()
        log.info(
            "%s %s lease %s/%s",
            self.identity,
            "acquired" if leading else "lost",
            self._namespace,
            self._name,
        )
        if self._on_change is not None:
            self._on_change(leading)

    def _spec(self, *, acquire: bool, transitions: int) -> JSON:
        now = format_rfc3339(self._clock.now(), micro=True)
        spec: JSON = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self._settings.lease_duration)),
            "renewTime": now,
            "leaseTransitions": transitions,
        }
        if acquire:
            spec["acquireTime"] = now
        return spec

    async def _try_acquire_or_renew(self) -> bool:
        now = self._clock.monotonic()
        try:
            lease = await self._api.get(LEASES, self._name, self._namespace)
        except NotFoundError:
            fresh = self._spec(acquire=True, transitions=0)
            body: JSON = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self._name, "namespace": self._namespace},
                "spec": fresh,
            }
            try:
                await self._api.create(LEASES, body, self._namespace)
            except ConflictError:  # someone created it first (409 AlreadyExists)
                return False
            self._observed, self._observed_at = fresh, now
            return True

        spec: JSON = lease.get("spec") or {}
        if spec != self._observed:
            self._observed, self._observed_at = spec, now
        holder = spec.get("holderIdentity") or ""
        ours = holder == self.identity
        duration = float(spec.get("leaseDurationSeconds") or self._settings.lease_duration)
        expired = now >= self._observed_at + duration
        if holder and not ours and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if ours else 1)
        lease["spec"] = {**spec, **self._spec(acquire=not ours, transitions=transitions)}
        try:
            updated = await self._api.replace(LEASES, lease, self._namespace)
        except ConflictError:
            return False
        self._observed, self._observed_at = updated.get("spec") or {}, now
        return True

    async def _release(self) -> None:
        lease = await self._api.get(LEASES, self._name, self._namespace)
        spec: JSON = lease.get("spec") or {}
        if spec.get("holderIdentity") != self.identity:
            return
        lease["spec"] = {**spec, "holderIdentity": None, "leaseDurationSeconds": 1}
        await self._api.replace(LEASES, lease, self._namespace)

    async def _run(self) -> None:
        while True:
            try:
                ok = await asyncio.wait_for(
                    self._try_acquire_or_renew(), timeout=self._settings.renew_deadline
                )
            except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as e:
                log.warning("leader election %s/%s: %s", self._namespace, self._name, e)
                ok = False
            now = self._clock.monotonic()
            if ok:
                self._last_renew = now
                self._set_leader(True)
            elif self.is_leader.is_set() and (
                now - self._last_renew >= self._settings.renew_deadline
                or (self._observed or {}).get("holderIdentity") not in (None, "", self.identity)
            ):
                # Could not renew in time, or someone else holds it now: stop acting first.
                self._set_leader(False)
            await asyncio.sleep(self._settings.retry_period)
