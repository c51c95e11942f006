"""`updraft provisioner`: the node provisioner against one cluster, with /metrics.

Connects to the cluster (a kubeconfig, else the pod's service account), builds the cloud
provider, runs the provisioner controller (informers, leader election, batching, NodeClaim
lifecycle) and serves `/metrics`, `/healthz` and `/readyz` (ready once the caches are synced)
until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from kube import Api, ConnectSettings, LeaderSettings
from provisioner.cloud import CloudProvider, KwokProvider
from provisioner.controllers import (
    METRICS_REGISTRY,
    DisruptionSettings,
    ProvisionerController,
    ProvisionerSettings,
)
from updraft.process import (
    METRICS_HOST,
    METRICS_PORT,
    StartupError,
    open_cluster,
    process_registry,
    serve_metrics,
    stop_on_signals,
)

log = logging.getLogger("updraft.provision")

CLOUD_PROVIDERS = ("kwok",)


@dataclass(frozen=True)
class ProvisionRunSettings:
    cloud_provider: str
    kubeconfig: Path | None = None
    """None: `$KUBECONFIG`, else the pod's service account (in-cluster)."""
    connect: ConnectSettings = field(default_factory=ConnectSettings)
    metrics_host: str = METRICS_HOST
    metrics_port: int = METRICS_PORT
    controller: ProvisionerSettings = field(default_factory=ProvisionerSettings)


def default_identity() -> str:
    """Unique per process: two replicas on one host (or a restart) never share an identity."""
    return f"{socket.gethostname()}_{os.getpid()}_{uuid.uuid4().hex[:6]}"


def leader_settings(lease_duration: float) -> LeaderSettings:
    """client-go's 15/10/2 s ratios, scaled to ``lease_duration``."""
    return LeaderSettings(
        lease_duration=lease_duration,
        renew_deadline=lease_duration * 2 / 3,
        retry_period=lease_duration * 2 / 15,
    )


def _provider(name: str, api: Api) -> CloudProvider:
    if name == "kwok":
        return KwokProvider(api)
    raise StartupError(f"--cloud-provider {name!r}: expected one of {', '.join(CLOUD_PROVIDERS)}")


async def run_provisioner(
    settings: ProvisionRunSettings, *, stop: asyncio.Event | None = None
) -> None:
    """Run until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None)."""
    stop = stop if stop is not None else stop_on_signals()
    ready = asyncio.Event()
    registry = process_registry()
    registry.register(METRICS_REGISTRY)
    async with contextlib.AsyncExitStack() as stack:
        if settings.metrics_port:
            # First: a taken port fails at once, and /healthz answers while the apiserver is
            # still being waited for.
            await serve_metrics(
                stack,
                host=settings.metrics_host,
                port=settings.metrics_port,
                ready=ready,
                registry=registry,
            )
        api = await open_cluster(stack, kubeconfig=settings.kubeconfig, settings=settings.connect)
        controller = ProvisionerController(
            api, _provider(settings.cloud_provider, api), settings.controller
        )
        controller.start()
        stack.push_async_callback(controller.close)
        synced = asyncio.create_task(controller.state.wait_synced())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({synced, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if synced.done():
            ready.set()
            log.info("caches synced; campaigning for lease %s", settings.controller.lease_name)
        else:
            synced.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await synced
        await stopping
        log.info("stopping")
        ready.clear()


def provisioner_settings(args: argparse.Namespace) -> ProvisionRunSettings:
    """Settings from the parsed `updraft provisioner` flags; ValueError names a bad flag."""
    if not 0 < args.batch_idle_duration <= args.batch_max_duration:
        raise ValueError("--batch-idle-duration must be positive and at most --batch-max-duration")
    if args.kubeconfig is not None and not args.kubeconfig.is_file():
        raise ValueError(f"--kubeconfig: {args.kubeconfig} is not a readable file")
    if args.disruption_poll_interval <= 0:
        raise ValueError("--disruption-poll-interval must be positive")
    if args.event_repeat_interval <= 0:
        raise ValueError("--event-repeat-interval must be positive")
    if args.leader_election_lease_duration <= 0:
        raise ValueError("--leader-election-lease-duration must be positive")
    return ProvisionRunSettings(
        cloud_provider=args.cloud_provider,
        kubeconfig=args.kubeconfig,
        connect=ConnectSettings(wait=args.apiserver_wait),
        metrics_host=args.metrics_host,
        metrics_port=args.metrics_port,
        controller=ProvisionerSettings(
            batch_idle=args.batch_idle_duration,
            batch_max=args.batch_max_duration,
            registration_timeout=args.registration_timeout,
            event_repeat=args.event_repeat_interval,
            lease_namespace=args.leader_election_namespace,
            lease_name=args.leader_election_name,
            identity=default_identity(),
            leader=leader_settings(args.leader_election_lease_duration),
            disruption=DisruptionSettings(
                poll=args.disruption_poll_interval,
                validation_delay=args.disruption_validation_delay,
            ),
        ),
    )
