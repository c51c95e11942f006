"""The gRPC server process part: the ExternalScaler service, gRPC health and reflection.

Owns the grpc.aio server's lifetime and its listening port; TLS unless plaintext is asked for
explicitly. It shares the event loop and the `MetricCache` with the metrics adapter.
"""

from __future__ import annotations

import errno
import logging
import socket
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry

from keda._pb import externalscaler_pb2 as pb
from keda._pb import externalscaler_pb2_grpc as pb_grpc
from keda.metrics import GrpcMetrics, counted
from keda.service import DEFAULT_POLICY, ExternalScalerService, TriggerSources
from keda.tls import ReloadingServerCredentials, TlsFiles
from scalers import MetricCache, TriggerPolicy

log = logging.getLogger(__name__)

SERVICE = pb.DESCRIPTOR.services_by_name["ExternalScaler"]
SERVICE_NAME = SERVICE.full_name

_OPTIONS = (("grpc.so_reuseport", 0),)
"""gRPC sets SO_REUSEPORT by default, so a second server on a taken port binds silently and
the kernel splits the calls between the two; off, a taken port is a bind error."""


def _ensure_free(host: str, port: int) -> None:
    """Raise `OSError` (EADDRINUSE) if something listens on host:port already.

    gRPC's own bind failure is a RuntimeError plus a line its C core logs to stderr; probing
    first (SO_REUSEADDR on, as gRPC has it, so a port in TIME_WAIT still counts as free) gives
    the caller a plain OSError in the common case."""
    if port == 0:
        return
    for family, kind, proto, _, address in socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    ):
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)


@dataclass(frozen=True)
class GrpcSettings:
    host: str = "0.0.0.0"
    """All interfaces: KEDA reaches us through a Service."""
    port: int = 9090
    """KEDA's documented examples use 9090 for external scalers; 0 picks a free port."""
    tls: TlsFiles | None = None
    plaintext: bool = False
    """Serve without TLS. Only on explicit request (`--grpc-plaintext`), never by default."""
    grace: float = 5.0
    """Seconds in-flight RPCs get to finish when the server stops."""

    def __post_init__(self) -> None:
        if self.tls is None and not self.plaintext:
            raise ValueError(
                "the gRPC server needs TLS files (--grpc-tls-cert/--grpc-tls-key) "
                "or an explicit --grpc-plaintext"
            )


class GrpcServer:
    def __init__(
        self,
        cache: MetricCache,
        settings: GrpcSettings,
        *,
        known_types: tuple[str, ...],
        policy: TriggerPolicy = DEFAULT_POLICY,
        sources: TriggerSources | None = None,
        metrics_registry: CollectorRegistry | None = None,
    ) -> None:
        """`metrics_registry`: where the calls-handled counter goes (a private one if None)."""
        self._settings = settings
        self.metrics = GrpcMetrics(metrics_registry)
        self.service = ExternalScalerService(
            cache, known_types=known_types, policy=policy, sources=sources
        )
        self.health = health.aio.HealthServicer()
        self.credentials: ReloadingServerCredentials | None = None
        self._server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        server = grpc.aio.server(options=_OPTIONS)
        service = counted(self.service, SERVICE, self.metrics)
        pb_grpc.add_ExternalScalerServicer_to_server(service, server)  # type: ignore[no-untyped-call]
        health_pb2_grpc.add_HealthServicer_to_server(
            counted(self.health, health_pb2.DESCRIPTOR.services_by_name["Health"], self.metrics),
            server,
        )
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        address = f"{self._settings.host}:{self._settings.port}"
        _ensure_free(self._settings.host, self._settings.port)
        try:
            if self._settings.plaintext:
                self.port = server.add_insecure_port(address)
            else:
                assert self._settings.tls is not None  # GrpcSettings guarantees it
                self.credentials = ReloadingServerCredentials(self._settings.tls)
                self.port = server.add_secure_port(address, self.credentials.credentials)
        except RuntimeError:  # gRPC's "Failed to bind to address"
            self.port = 0
        if self.port == 0:  # older gRPC reports a failed bind as port 0
            raise OSError(errno.EADDRINUSE, f"cannot listen on {address}")
        await server.start()
        self._server = server
        serving = health_pb2.HealthCheckResponse.SERVING
        await self.health.set(SERVICE_NAME, serving)
        await self.health.set("", serving)
        mode = "plaintext" if self._settings.plaintext else "TLS"
        log.info("gRPC external scaler serving on %s:%d (%s)", self._settings.host, self.port, mode)

    async def close(self) -> None:
        if self._server is not None:
            await self.health.enter_graceful_shutdown()
            await self._server.stop(self._settings.grace)
            self._server = None
