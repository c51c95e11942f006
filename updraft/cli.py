"""`updraft`: the console script.

updraft serve        the metrics API (aggregated external/custom metrics) and the KEDA gRPC
                     external scaler, in one process sharing one cache
updraft provisioner  the node provisioner (NodePools -> NodeClaims -> nodes)
updraft validate     check Updraft objects in YAML files offline
updraft certs        the metrics API's serving certificate, without cert-manager
updraft recommend    container requests from Prometheus usage history, and the nodes and $/h
                     they would save (a report; nothing is changed)
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from pathlib import Path
from typing import NoReturn

from keda import GrpcSettings, TlsFiles
from kits import format_duration, parse_duration, parse_rfc3339
from kube import ConnectSettings, LeaderSettings
from provisioner import QuantityError, to_millis, to_units
from provisioner.controllers import DisruptionSettings, ProvisionerSettings
from updraft import __version__, certs, logs
from updraft.process import METRICS_HOST, METRICS_PORT, StartupError
from updraft.provision import CLOUD_PROVIDERS, provisioner_settings, run_provisioner
from updraft.recommend import OUTPUTS, RecommendSettings, SizingPolicy, UsageQuery, run_recommend
from updraft.serve import AdapterSettings, PrometheusAuthFiles, ServeSettings, serve
from updraft.validate import validate


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (an integer 0-65535)")
    return port


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr and exit status 2, like every start-up failure;
    the full usage is one `--help` away."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="updraft",
        description="Kubernetes autoscaling: external/custom metrics API, KEDA external scaler, "
        "node provisioner.",
    )
    parser.add_argument("--version", action="version", version=f"updraft {__version__}")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = commands.add_parser(
        "serve", help="serve the metrics API, the KEDA external scaler (gRPC) and /metrics"
    )
    a = s.add_argument_group("metrics API (external.metrics.k8s.io, custom.metrics.k8s.io)")
    a.add_argument("--bind-address", default=AdapterSettings.host, help="default: %(default)s")
    a.add_argument(
        "--secure-port",
        type=_port,
        default=AdapterSettings.port,
        help="HTTPS port; 0 disables (default: %(default)s)",
    )
    a.add_argument("--tls-cert-file", type=Path, help="PEM serving certificate (re-read on change)")
    a.add_argument("--tls-private-key-file", type=Path, help="PEM key of --tls-cert-file")
    a.add_argument(
        "--cert-dir",
        type=Path,
        default=AdapterSettings.cert_dir,
        help="where a self-signed pair is generated without --tls-cert-file (default: %(default)s)",
    )
    a.add_argument(
        "--service-name",
        default=AdapterSettings.service,
        help="the APIService's Service (default: %(default)s)",
    )
    a.add_argument(
        "--service-namespace",
        default=AdapterSettings.namespace,
        help="its namespace (default: %(default)s)",
    )
    a.add_argument(
        "--standalone-config",
        type=Path,
        help="serve the MetricSources in this YAML file; no cluster is contacted",
    )
    a.add_argument(
        "--kubeconfig",
        type=Path,
        help="the cluster to watch MetricSources in and delegate auth to "
        "(default: $KUBECONFIG, else the pod's service account)",
    )
    _add_apiserver_wait(a)
    a.add_argument(
        "--requestheader-client-ca-file",
        type=Path,
        help="CA of kube-apiserver's front-proxy client certificate (default: read from "
        "kube-system/extension-apiserver-authentication)",
    )
    a.add_argument(
        "--requestheader-allowed-names",
        default="",
        help="comma-separated CNs allowed as the front proxy (default: any the CA signed)",
    )
    a.add_argument(
        "--custom-metrics-config",
        type=Path,
        help="serve custom.metrics.k8s.io from Prometheus by these rules (YAML, "
        "prometheus-adapter's rule form; see examples/custom-metrics-rules.yaml)",
    )
    a.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="standalone mode only: serve every request unauthenticated (loopback trials); "
        "never in a cluster",
    )
    _add_duration(
        a,
        "--secret-refresh",
        default=AdapterSettings.secret_refresh,
        help="how often a MetricSource re-reads its authRef Secret (one whose Secret is "
        "missing or incomplete is retried every 10s)",
    )
    _add_prometheus_auth(s)
    g = s.add_argument_group("gRPC (KEDA external scaler)")
    g.add_argument(
        "--grpc-host", default=GrpcSettings.host, help="listen address (default: %(default)s)"
    )
    g.add_argument(
        "--grpc-port",
        type=_port,
        default=GrpcSettings.port,
        help="listen port; 0 disables (default: %(default)s)",
    )
    g.add_argument("--grpc-tls-cert", type=Path, help="PEM serving certificate (re-read on change)")
    g.add_argument("--grpc-tls-key", type=Path, help="PEM private key of --grpc-tls-cert")
    g.add_argument(
        "--grpc-client-ca",
        type=Path,
        help="PEM CA bundle; when given, clients must present a certificate it signed (mTLS)",
    )
    g.add_argument(
        "--grpc-plaintext",
        action="store_true",
        help="serve gRPC without TLS (for trying it out on loopback; never in a cluster)",
    )
    _add_metrics_flags(s.add_argument_group("process metrics"))
    _add_provisioner(commands)
    v = commands.add_parser(
        "validate",
        help="check MetricSource/NodePool/rules YAML files offline, as the controllers do",
    )
    v.add_argument("files", nargs="+", type=Path, metavar="FILE")
    certs.add_parser(commands)
    _add_recommend(commands)
    return parser


def _require_files(parser: argparse.ArgumentParser, paths: dict[str, Path | None]) -> None:
    for flag, path in paths.items():
        if path is not None and not path.is_file():
            parser.error(f"{flag}: {path} is not a readable file")


def _add_prometheus_auth(
    s: argparse.ArgumentParser,
    title: str = "custom metrics Prometheus (with --custom-metrics-config; secrets from files "
    "only)",
) -> None:
    p = s.add_argument_group(title)
    p.add_argument("--prometheus-bearer-token-file", type=Path, help="send this bearer token")
    p.add_argument("--prometheus-username", help="basic auth user name")
    p.add_argument(
        "--prometheus-password-file", type=Path, help="basic auth password (needs a username)"
    )
    p.add_argument("--prometheus-custom-auth-header", help="a header that carries a credential")
    p.add_argument("--prometheus-custom-auth-value-file", type=Path, help="that header's value")
    p.add_argument("--prometheus-ca-file", type=Path, help="PEM CA of Prometheus's certificate")
    p.add_argument("--prometheus-client-cert-file", type=Path, help="PEM TLS client certificate")
    p.add_argument("--prometheus-client-key-file", type=Path, help="PEM key of that certificate")
    p.add_argument(
        "--prometheus-header",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra plain header (e.g. X-Scope-OrgID=team-a); repeatable",
    )
    p.add_argument(
        "--prometheus-insecure-skip-verify",
        action="store_true",
        help="do not verify Prometheus's TLS certificate",
    )


def _prometheus_auth(
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    *,
    needs: str | None = "--custom-metrics-config",
) -> PrometheusAuthFiles:
    """The Prometheus auth flags' files; ``needs``: the flag without which they mean nothing."""
    files = {
        "--prometheus-bearer-token-file": args.prometheus_bearer_token_file,
        "--prometheus-password-file": args.prometheus_password_file,
        "--prometheus-custom-auth-value-file": args.prometheus_custom_auth_value_file,
        "--prometheus-ca-file": args.prometheus_ca_file,
        "--prometheus-client-cert-file": args.prometheus_client_cert_file,
        "--prometheus-client-key-file": args.prometheus_client_key_file,
    }
    given = [flag for flag, value in files.items() if value is not None]
    if args.prometheus_username is not None:
        given.append("--prometheus-username")
    if args.prometheus_custom_auth_header is not None:
        given.append("--prometheus-custom-auth-header")
    if args.prometheus_header:
        given.append("--prometheus-header")
    if args.prometheus_insecure_skip_verify:
        given.append("--prometheus-insecure-skip-verify")
    if given and needs is not None and getattr(args, needs.lstrip("-").replace("-", "_")) is None:
        parser.error(f"{given[0]} configures the Prometheus of {needs}; give it")
    if args.prometheus_bearer_token_file is not None and args.prometheus_username is not None:
        parser.error("--prometheus-bearer-token-file and --prometheus-username exclude each other")
    if args.prometheus_password_file is not None and args.prometheus_username is None:
        parser.error("--prometheus-password-file needs --prometheus-username")
    for first, second in (
        ("--prometheus-client-cert-file", "--prometheus-client-key-file"),
        ("--prometheus-custom-auth-header", "--prometheus-custom-auth-value-file"),
    ):
        if (first in given) != (second in given):
            parser.error(f"{first} and {second} go together")
    _require_files(parser, files)
    headers: list[tuple[str, str]] = []
    for item in args.prometheus_header:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            parser.error(f"--prometheus-header: expected NAME=VALUE, got {item!r}")
        headers.append((name.strip(), value.strip()))
    return PrometheusAuthFiles(
        bearer_token_file=args.prometheus_bearer_token_file,
        username=args.prometheus_username,
        password_file=args.prometheus_password_file,
        custom_auth_header=args.prometheus_custom_auth_header,
        custom_auth_value_file=args.prometheus_custom_auth_value_file,
        ca_file=args.prometheus_ca_file,
        cert_file=args.prometheus_client_cert_file,
        key_file=args.prometheus_client_key_file,
        headers=tuple(headers),
        insecure_skip_verify=args.prometheus_insecure_skip_verify,
    )


def _grpc_settings(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> GrpcSettings | None:
    if args.grpc_port == 0:
        return None
    if args.grpc_plaintext:
        if args.grpc_tls_cert or args.grpc_tls_key or args.grpc_client_ca:
            parser.error("--grpc-plaintext cannot be combined with --grpc-tls-*/--grpc-client-ca")
        return GrpcSettings(host=args.grpc_host, port=args.grpc_port, plaintext=True)
    if args.grpc_tls_cert is None or args.grpc_tls_key is None:
        parser.error(
            "gRPC needs --grpc-tls-cert and --grpc-tls-key (PEM files), "
            "or --grpc-plaintext to serve without TLS, or --grpc-port 0 to turn it off"
        )
    _require_files(
        parser,
        {
            "--grpc-tls-cert": args.grpc_tls_cert,
            "--grpc-tls-key": args.grpc_tls_key,
            "--grpc-client-ca": args.grpc_client_ca,
        },
    )
    tls = TlsFiles(cert=args.grpc_tls_cert, key=args.grpc_tls_key, client_ca=args.grpc_client_ca)
    return GrpcSettings(host=args.grpc_host, port=args.grpc_port, tls=tls)


def _adapter_settings(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> AdapterSettings | None:
    if args.secure_port == 0:
        return None
    if (args.tls_cert_file is None) != (args.tls_private_key_file is None):
        parser.error("--tls-cert-file and --tls-private-key-file go together")
    if args.insecure_no_auth and args.standalone_config is None:
        parser.error("--insecure-no-auth is only for standalone mode (--standalone-config)")
    if args.standalone_config is not None and args.kubeconfig is not None:
        parser.error("--standalone-config and --kubeconfig exclude each other")
    _require_files(
        parser,
        {
            "--tls-cert-file": args.tls_cert_file,
            "--tls-private-key-file": args.tls_private_key_file,
            "--standalone-config": args.standalone_config,
            "--kubeconfig": args.kubeconfig,
            "--requestheader-client-ca-file": args.requestheader_client_ca_file,
            "--custom-metrics-config": args.custom_metrics_config,
        },
    )
    names = tuple(n.strip() for n in args.requestheader_allowed_names.split(",") if n.strip())
    return AdapterSettings(
        host=args.bind_address,
        port=args.secure_port,
        cert_file=args.tls_cert_file,
        key_file=args.tls_private_key_file,
        cert_dir=args.cert_dir,
        service=args.service_name,
        namespace=args.service_namespace,
        standalone_config=args.standalone_config,
        kubeconfig=args.kubeconfig,
        connect=ConnectSettings(wait=args.apiserver_wait),
        insecure_no_auth=args.insecure_no_auth,
        requestheader_client_ca=args.requestheader_client_ca_file,
        requestheader_allowed_names=names,
        custom_metrics_config=args.custom_metrics_config,
        prometheus_auth=_prometheus_auth(args, parser),
        secret_refresh=args.secret_refresh,
    )


def _seconds(text: str) -> float:
    """A duration flag: Go-style (``500ms``, ``1s``, ``15m``) or plain seconds."""
    try:
        value = float(text)
    except ValueError:
        try:
            return parse_duration(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a duration (500ms, 1s, 15m)"
            ) from None
    if value < 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a non-negative number of seconds")
    return value


def _add_provisioner(commands: argparse._SubParsersAction[_Parser]) -> None:
    p = commands.add_parser(
        "provisioner", help="launch nodes for pending pods (NodePools, NodeClaims) and /metrics"
    )
    p.add_argument(
        "--kubeconfig",
        type=Path,
        help="the cluster (default: $KUBECONFIG, else the pod's service account)",
    )
    _add_apiserver_wait(p)
    p.add_argument("--cloud-provider", required=True, choices=CLOUD_PROVIDERS)
    _add_metrics_flags(p)
    _add_duration(
        p, "--batch-idle-duration", default=ProvisionerSettings.batch_idle, help="batching window"
    )
    _add_duration(p, "--batch-max-duration", default=ProvisionerSettings.batch_max, help="")
    _add_duration(
        p,
        "--registration-timeout",
        default=ProvisionerSettings.registration_timeout,
        help="delete a NodeClaim whose node has not registered by then",
    )
    _add_duration(
        p,
        "--disruption-poll-interval",
        default=DisruptionSettings.poll,
        help="between disruption passes",
    )
    _add_duration(
        p,
        "--disruption-validation-delay",
        default=DisruptionSettings.validation_delay,
        help="a disruption command is recomputed after this long and runs only if unchanged",
    )
    _add_duration(
        p,
        "--event-repeat-interval",
        default=ProvisionerSettings.event_repeat,
        help="refresh an Event that stays true (FailedProvisioning, DisruptionBlocked) this often",
    )
    p.add_argument(
        "--leader-election-namespace",
        default=ProvisionerSettings.lease_namespace,
        help="default: %(default)s",
    )
    p.add_argument(
        "--leader-election-name",
        default=ProvisionerSettings.lease_name,
        help="the Lease's name (default: %(default)s)",
    )
    _add_duration(
        p, "--leader-election-lease-duration", default=LeaderSettings.lease_duration, help=""
    )


def _add_metrics_flags(flags: argparse._ActionsContainer) -> None:
    """`--metrics-host` / `--metrics-port`, the same for every command that serves /metrics."""
    flags.add_argument("--metrics-host", default=METRICS_HOST, help="default: %(default)s")
    flags.add_argument(
        "--metrics-port",
        type=_port,
        default=METRICS_PORT,
        help="/metrics, /healthz, /readyz; 0 disables (default: %(default)s)",
    )


def _add_apiserver_wait(flags: argparse._ActionsContainer) -> None:
    _add_duration(
        flags,
        "--apiserver-wait",
        default=ConnectSettings.wait,
        help="how long start-up retries an apiserver that does not answer before exiting 2",
    )


def _add_duration(
    flags: argparse._ActionsContainer, name: str, *, default: float, help: str
) -> None:
    """A duration flag whose help shows `default` as the Go duration a user would type."""
    shown = f"default: {format_duration(default)}"
    flags.add_argument(
        name, type=_seconds, default=default, help=f"{help} ({shown})" if help else shown
    )


_DEFAULT_POLICY = SizingPolicy()


def _fraction(text: str) -> float:
    """A percentile flag: a number in (0, 1] (0.9 is the 90th percentile)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number in (0, 1] (0.9: the 90th)")
    return value


def _margin(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction >= 0 (0.15: 15 %)")
    return value


def _span(text: str) -> float:
    """A positive duration; also in days (``7d``), as Prometheus writes them."""
    days = text[:-1]
    value = int(days) * 86400.0 if text.endswith("d") and days.isdigit() else _seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive duration (1m, 24h, 7d)")
    return value


def _moment(text: str) -> float:
    try:
        return parse_rfc3339(text).timestamp()
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _millis(text: str) -> int:
    try:
        return to_millis(text, field="cpu")
    except QuantityError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a CPU quantity (25m, 0.5, 2)") from None


def _bytes(text: str) -> int:
    try:
        return to_units(text, field="memory")
    except QuantityError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a memory quantity (250Mi, 1Gi)"
        ) from None


def _url(text: str) -> str:
    if not text.startswith(("http://", "https://")) or len(text.split("://", 1)[1]) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL")
    return text


def _add_recommend(commands: argparse._SubParsersAction[_Parser]) -> None:
    r = commands.add_parser(
        "recommend",
        help="recommend container requests from Prometheus usage history, with the nodes and "
        "$/h they would save (the VPA recommender's defaults; a report, nothing is changed)",
    )
    r.add_argument(
        "--prometheus-url",
        type=_url,
        required=True,
        help="the Prometheus holding cAdvisor's container_* series",
    )
    _add_duration(
        r,
        "--prometheus-timeout",
        default=RecommendSettings.prometheus_timeout,
        help="per range query",
    )
    r.add_argument(
        "--kubeconfig",
        type=Path,
        help="the cluster (default: $KUBECONFIG, else the pod's service account)",
    )
    _add_apiserver_wait(r)
    r.add_argument(
        "-n",
        "--namespace",
        help="recommend for this namespace's workloads only (default: all; the simulation "
        "always packs every namespace's pods)",
    )
    r.add_argument("-o", "--output", choices=OUTPUTS, default="table", help="default: %(default)s")
    w = r.add_argument_group("window")
    w.add_argument("--window", type=_span, default=7 * 86400.0, help="how far back (default: 7d)")
    w.add_argument("--end", type=_moment, help="RFC 3339 end of the window (default: now)")
    w.add_argument(
        "--step",
        type=_span,
        default=60.0,
        help="one sample per container per step (default: 1m, the recommender's interval)",
    )
    w.add_argument(
        "--rate-window",
        type=_span,
        default=300.0,
        help="the CPU counter's rate() range; at least two scrape intervals (default: 5m)",
    )
    w.add_argument(
        "--chunk",
        type=_span,
        default=86400.0,
        help="window per range query, at most 11000 steps (default: 24h)",
    )
    w.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="a progress line on stderr; auto: when stderr is a terminal (default: auto)",
    )
    p = r.add_argument_group("sizing (defaults: the Vertical Pod Autoscaler recommender's)")
    p.add_argument(
        "--cpu-percentile",
        type=_fraction,
        default=_DEFAULT_POLICY.cpu_percentile,
        help="of the CPU usage samples (default: %(default)s)",
    )
    p.add_argument(
        "--memory-percentile",
        type=_fraction,
        default=_DEFAULT_POLICY.memory_percentile,
        help="of the per-interval memory peaks (default: %(default)s)",
    )
    p.add_argument(
        "--memory-interval",
        type=_span,
        default=_DEFAULT_POLICY.memory_interval,
        help="one memory peak per container per interval (default: 24h)",
    )
    p.add_argument(
        "--margin",
        type=_margin,
        default=_DEFAULT_POLICY.margin,
        help="fraction added to CPU and memory (default: %(default)s)",
    )
    p.add_argument(
        "--min-cpu",
        type=_millis,
        default=_DEFAULT_POLICY.min_cpu_millis,
        help="floor per pod, split over its containers (default: 25m)",
    )
    p.add_argument(
        "--min-memory",
        type=_bytes,
        default=_DEFAULT_POLICY.min_memory_bytes,
        help="floor per pod, split over its containers (default: 250Mi)",
    )
    _add_prometheus_auth(r, "Prometheus auth (secrets from files only)")


def recommend_settings(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> RecommendSettings:
    """Settings from the parsed `updraft recommend` flags; a bad one exits 2 naming it."""
    if args.chunk < args.step:
        parser.error("--chunk must be at least --step")
    if args.window < args.step:
        parser.error("--window must be at least --step")
    if args.memory_interval < args.step:
        parser.error("--memory-interval must be at least --step")
    _require_files(parser, {"--kubeconfig": args.kubeconfig})
    end = args.end if args.end is not None else time.time()
    progress = {"always": True, "never": False}.get(args.progress, sys.stderr.isatty())
    return RecommendSettings(
        prometheus_url=args.prometheus_url,
        query=UsageQuery(
            start=end - args.window,
            end=end,
            step=args.step,
            rate_window=args.rate_window,
            chunk=args.chunk,
            namespace=args.namespace,
        ),
        policy=SizingPolicy(
            cpu_percentile=args.cpu_percentile,
            memory_percentile=args.memory_percentile,
            memory_interval=args.memory_interval,
            margin=args.margin,
            min_cpu_millis=args.min_cpu,
            min_memory_bytes=args.min_memory,
        ),
        output=args.output,
        kubeconfig=args.kubeconfig,
        connect=ConnectSettings(wait=args.apiserver_wait),
        prometheus_auth=_prometheus_auth(args, parser, needs=None),
        prometheus_timeout=args.prometheus_timeout,
        progress=progress,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(args.log_level)
    if args.command == "serve":
        settings = ServeSettings(
            grpc=_grpc_settings(args, parser),
            adapter=_adapter_settings(args, parser),
            metrics_host=args.metrics_host,
            metrics_port=args.metrics_port,
        )
        try:
            asyncio.run(serve(settings))
        except StartupError as e:
            print(f"updraft serve: {e}", file=sys.stderr)
            return 2
    elif args.command == "validate":
        oks, problems = validate(args.files)
        for line in oks:
            print(line)
        for line in problems:
            print(line, file=sys.stderr)
        return 2 if problems else 0
    elif args.command == "provisioner":
        try:
            asyncio.run(run_provisioner(provisioner_settings(args)))
        except (StartupError, ValueError) as e:
            print(f"updraft provisioner: {e}", file=sys.stderr)
            return 2
    elif args.command == "certs":
        return certs.run(args)
    elif args.command == "recommend":
        return run_recommend(recommend_settings(args, parser))
    return 0


if __name__ == "__main__":
    sys.exit(main())
