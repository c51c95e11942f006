"""`updraft serve`: both front doors in one process and one event loop, sharing one cache.

The metrics adapter (the aggregated external/custom metrics API over HTTPS), the KEDA gRPC
scaler and the process's own `/metrics`, `/healthz` and `/readyz`. MetricSources come from the
cluster (the MetricSource controller) or, in standalone mode, from a YAML file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from adapter import (
    DEFAULT_PORT,
    AdapterMetrics,
    AdapterServer,
    AllowAll,
    Authenticator,
    Authorizer,
    BearerTokenAuthenticator,
    ChainAuthenticator,
    ControllerSettings,
    CustomMetrics,
    CustomMetricsConfigError,
    FrontProxyAuthenticator,
    KubeAccessReviewer,
    KubeTokenReviewer,
    MetricSourceController,
    MetricSourceProvider,
    NoCustomMetrics,
    PrometheusCustomMetrics,
    RequestHeaderSettings,
    RequestHeaderWatcher,
    ServingCertificate,
    ServingSettings,
    SubjectAccessAuthorizer,
    create_app,
    ensure_self_signed,
    load_config,
    load_standalone,
    request_header_settings,
)
from keda import GrpcServer, GrpcSettings
from kube import Api, ConnectSettings, KubeError
from scalers import (
    MetricCache,
    PrometheusAuth,
    Registry,
    TlsMaterial,
    default_registry,
    ssl_context,
)
from updraft.process import (
    METRICS_HOST,
    METRICS_PORT,
    StartupError,
    listening,
    open_cluster,
    process_registry,
    serve_metrics,
    stop_on_signals,
)

log = logging.getLogger("updraft.serve")


@dataclass(frozen=True)
class PrometheusAuthFiles:
    """The custom-metrics Prometheus's auth, as KEDA's Prometheus scaler has it (bearer or
    basic, a custom header, TLS client certificate, CA); secrets come from files, never flags.
    The files are read once, at startup."""

    bearer_token_file: Path | None = None
    username: str | None = None
    password_file: Path | None = None
    """Basic auth's password; with `username` (an empty password without it)."""
    custom_auth_header: str | None = None
    custom_auth_value_file: Path | None = None
    ca_file: Path | None = None
    """PEM CA bundle that signed Prometheus's serving certificate (default: the system's)."""
    cert_file: Path | None = None
    key_file: Path | None = None
    headers: tuple[tuple[str, str], ...] = ()
    """Plain extra headers (`X-Scope-OrgID`), not secrets."""
    insecure_skip_verify: bool = False

    def load(self) -> PrometheusAuth:
        """Read the files; `StartupError` naming the flag when one cannot be read or the TLS
        material does not load. Blocking: call it in a thread."""

        def text(flag: str, path: Path | None, *, strip: bool) -> str | None:
            if path is None:
                return None
            try:
                value = path.read_text()
            except (OSError, UnicodeError) as e:
                raise StartupError(f"{flag} {path}: {getattr(e, 'strerror', None) or e}") from None
            return value.strip() if strip else value

        token = text("--prometheus-bearer-token-file", self.bearer_token_file, strip=True)
        password = text("--prometheus-password-file", self.password_file, strip=True)
        custom_value = text(
            "--prometheus-custom-auth-value-file", self.custom_auth_value_file, strip=True
        )
        tls = TlsMaterial(
            ca=text("--prometheus-ca-file", self.ca_file, strip=False),
            cert=text("--prometheus-client-cert-file", self.cert_file, strip=False),
            key=text("--prometheus-client-key-file", self.key_file, strip=False),
        )
        if tls.ca or tls.cert:
            try:
                ssl_context(tls, unsafe=self.insecure_skip_verify)
            except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
                raise StartupError(
                    f"--prometheus-ca-file/--prometheus-client-cert-file/-key-file: the PEM "
                    f"material does not load ({type(e).__name__}: {e})"
                ) from None
        custom = None
        if self.custom_auth_header is not None and custom_value is not None:
            custom = (self.custom_auth_header, custom_value)
        return PrometheusAuth.build(
            bearer_token=token,
            basic=(self.username, password or "") if self.username is not None else None,
            custom=custom,
            tls=tls,
            unsafe_ssl=self.insecure_skip_verify,
        )


@dataclass(frozen=True)
class AdapterSettings:
    host: str = "0.0.0.0"
    """All interfaces: kube-apiserver reaches us through a Service."""
    port: int = DEFAULT_PORT
    """The aggregated API's HTTPS port (6443, as kube-apiserver's own); the APIService's Service
    targets it."""
    cert_file: Path | None = None
    key_file: Path | None = None
    cert_dir: Path = Path("/tmp/updraft-serving")
    """Where a self-signed pair is generated when no cert/key is given (a tmpfs in the pod)."""
    service: str = "updraft"
    namespace: str = "updraft-system"
    """The Service the APIService names: a self-signed certificate is issued for
    `<service>.<namespace>.svc`, the name kube-apiserver verifies."""
    standalone_config: Path | None = None
    """MetricSources from this file instead of the cluster; no Kubernetes API is used."""
    kubeconfig: Path | None = None
    """The cluster to watch and to delegate auth to; None: `$KUBECONFIG`, else the pod's
    service account."""
    connect: ConnectSettings = field(default_factory=ConnectSettings)
    """How long start-up waits for that cluster's apiserver (`--apiserver-wait`)."""
    insecure_no_auth: bool = False
    requestheader_client_ca: Path | None = None
    requestheader_allowed_names: tuple[str, ...] = ()
    custom_metrics_config: Path | None = None
    """Prometheus rules (prometheus-adapter's form) that serve custom.metrics.k8s.io; None:
    the custom group is registered but has no metrics."""
    prometheus_auth: PrometheusAuthFiles = field(default_factory=PrometheusAuthFiles)
    """How the custom-metrics provider authenticates to the rules' Prometheus."""
    secret_refresh: float = ControllerSettings.secret_refresh
    """How often healthy MetricSources re-read their `authRef` Secret (`--secret-refresh`)."""


@dataclass(frozen=True)
class ServeSettings:
    grpc: GrpcSettings | None
    """None: the gRPC server is off (`--grpc-port 0`)."""
    adapter: AdapterSettings | None = None
    """None: the metrics API is off (`--secure-port 0`)."""
    metrics_host: str = METRICS_HOST
    metrics_port: int = METRICS_PORT
    """Prometheus scrapes /metrics here; 0 turns the endpoint off."""


def _requestheader_from_file(settings: AdapterSettings) -> RequestHeaderSettings | None:
    if settings.requestheader_client_ca is None:
        return None
    try:
        pem = settings.requestheader_client_ca.read_bytes()
    except OSError as e:
        raise StartupError(
            f"--requestheader-client-ca-file {settings.requestheader_client_ca}: {e.strerror}"
        ) from None
    return RequestHeaderSettings(
        client_ca_pem=pem, allowed_names=settings.requestheader_allowed_names
    )


@contextlib.asynccontextmanager
async def _adapter(
    settings: AdapterSettings,
    cache: MetricCache,
    registry: Registry,
    provider: MetricSourceProvider,
    api: Api | None,
    request_metrics: AdapterMetrics,
) -> AsyncIterator[AdapterServer]:
    """The metrics API; `api` is the cluster's (None in standalone mode)."""
    authenticator: Authenticator
    authorizer: Authorizer
    ready: Callable[[], bool]
    controller: MetricSourceController | None = None
    front_proxy: FrontProxyAuthenticator | None = None
    requestheader = _requestheader_from_file(settings)
    custom_config = None
    prometheus_auth = None
    if settings.custom_metrics_config is not None:
        try:
            custom_config = await asyncio.to_thread(load_config, settings.custom_metrics_config)
        except CustomMetricsConfigError as e:
            raise StartupError(f"--custom-metrics-config {e}") from None
        prometheus_auth = await asyncio.to_thread(settings.prometheus_auth.load)
    if settings.standalone_config is not None:
        try:
            # With custom-metrics rules an empty file is a choice (custom metrics only), not a
            # mistake; without them the process would serve nothing, which is refused.
            sources = await asyncio.to_thread(
                load_standalone,
                settings.standalone_config,
                registry=registry,
                allow_empty=custom_config is not None,
            )
        except ValueError as e:
            raise StartupError(str(e)) from None
        provider.replace_all(sources)
        if sources:
            log.info("serving %d MetricSources from %s", len(sources), settings.standalone_config)
        else:
            log.warning(
                "%s holds no MetricSources: serving custom metrics only",
                settings.standalone_config,
            )
        if settings.insecure_no_auth:
            log.warning("--insecure-no-auth: every request is served, unauthenticated")
            authenticator = authorizer = AllowAll()
        elif requestheader is not None:
            # No cluster to ask about RBAC: a verified front-proxy identity is enough.
            authenticator = FrontProxyAuthenticator(requestheader)
            authorizer = AllowAll()
        else:
            raise StartupError(
                "standalone mode has no cluster to authenticate against: give "
                "--requestheader-client-ca-file, or --insecure-no-auth on loopback"
            )
        ready = lambda: True  # noqa: E731 - the file is loaded before the server starts
    else:
        if settings.insecure_no_auth:
            raise StartupError("--insecure-no-auth is only for standalone mode")
        assert api is not None  # serve() opens the cluster outside standalone mode
        if requestheader is None:
            try:
                requestheader = await request_header_settings(api)
            except (KubeError, aiohttp.ClientError, OSError) as e:
                raise StartupError(
                    f"cannot read kube-system/extension-apiserver-authentication: {e}"
                ) from None
        if requestheader is None:
            raise StartupError(
                "kube-apiserver publishes no requestheader CA in "
                "kube-system/extension-apiserver-authentication: start it with "
                "--requestheader-client-ca-file, or give --requestheader-client-ca-file here"
            )
        front_proxy = FrontProxyAuthenticator(requestheader)
        authenticator = ChainAuthenticator(
            front_proxy, BearerTokenAuthenticator(KubeTokenReviewer(api))
        )
        authorizer = SubjectAccessAuthorizer(KubeAccessReviewer(api))
        controller = MetricSourceController(
            api,
            provider,
            cache,
            registry,
            settings=ControllerSettings(secret_refresh=settings.secret_refresh),
        )
        controller.start()
        ready = controller.synced.is_set

    if settings.cert_file is not None and settings.key_file is not None:
        cert_file, key_file = settings.cert_file, settings.key_file
    else:
        pair = await asyncio.to_thread(
            ensure_self_signed,
            settings.cert_dir,
            service=settings.service,
            namespace=settings.namespace,
        )
        cert_file, key_file = pair.cert_file, pair.key_file  # ensure_self_signed warned
    client_cas = (requestheader.client_ca_pem,) if requestheader is not None else ()
    certificate = ServingCertificate(
        ServingSettings(cert_file, key_file, client_ca_pems=client_cas)
    )
    custom: CustomMetrics = NoCustomMetrics()
    custom_source = None
    if custom_config is not None:
        # Objects a Pods metric selects are listed through the cluster; standalone mode has
        # none, so the selector becomes PromQL matchers on the series instead.
        custom_source = PrometheusCustomMetrics(
            custom_config,
            api=api,
            auth=prometheus_auth,
            headers=settings.prometheus_auth.headers,
        )
        custom = custom_source
    app = create_app(
        external=provider,
        custom=custom,
        authenticator=authenticator,
        authorizer=authorizer,
        ready=ready,
        metrics=request_metrics,
    )
    server = AdapterServer(app, certificate=certificate, host=settings.host, port=settings.port)
    watcher: RequestHeaderWatcher | None = None
    if api is not None and front_proxy is not None and settings.requestheader_client_ca is None:
        # The trust came from the cluster: follow it when kube-apiserver rotates its CA.
        watcher = RequestHeaderWatcher(api, front_proxy, certificate)
        watcher.start()
    try:
        if custom_source is not None:
            await custom_source.start()  # the first discovery, before anyone asks
        with listening("--secure-port", settings.host, settings.port):
            await server.start()
        log.info("metrics API serving on https://%s:%d", settings.host, server.port)
        yield server
    finally:
        if watcher is not None:
            await watcher.close()
        await server.close()
        if custom_source is not None:
            await custom_source.close()
        if controller is not None:
            await controller.close()


async def serve(settings: ServeSettings, *, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set (or SIGTERM/SIGINT when `stop` is None)."""
    stop = stop if stop is not None else stop_on_signals()
    ready = asyncio.Event()
    registry = default_registry()
    metrics = process_registry()
    cache = MetricCache(registry=registry, metrics_registry=metrics)
    await cache.start()
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(cache.close)
        if settings.metrics_port:
            await serve_metrics(
                stack,
                host=settings.metrics_host,
                port=settings.metrics_port,
                ready=ready,
                registry=metrics,
            )
        sources: MetricSourceProvider | None = None
        if settings.adapter is not None:
            api = None
            if settings.adapter.standalone_config is None:
                api = await open_cluster(
                    stack, kubeconfig=settings.adapter.kubeconfig, settings=settings.adapter.connect
                )
            sources = MetricSourceProvider(cache)
            await stack.enter_async_context(
                _adapter(settings.adapter, cache, registry, sources, api, AdapterMetrics(metrics))
            )
        if settings.grpc is not None:
            # KEDA triggers may name a MetricSource (metricSourceRef) when the adapter runs.
            grpc_server = GrpcServer(
                cache,
                settings.grpc,
                known_types=registry.types(),
                sources=sources,
                metrics_registry=metrics,
            )
            with listening("--grpc-port", settings.grpc.host, settings.grpc.port):
                await grpc_server.start()
            stack.push_async_callback(grpc_server.close)
        ready.set()
        await stop.wait()
        log.info("stopping")
        ready.clear()
