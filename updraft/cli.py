"""`updraft`: the console script.

updraft serve        the KEDA gRPC external scaler (and, when it lands, the metrics API)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from scalers.grpc import GrpcSettings, TlsFiles
from updraft import __version__, logs
from updraft.serve import ServeSettings, serve


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535)")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="updraft",
        description="Kubernetes autoscaling: external/custom metrics API, KEDA external scaler, "
        "node provisioner.",
    )
    parser.add_argument("--version", action="version", version=f"updraft {__version__}")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = commands.add_parser("serve", help="serve the KEDA external scaler (gRPC) and /metrics")
    g = s.add_argument_group("gRPC (KEDA external scaler)")
    g.add_argument("--grpc-host", default="0.0.0.0", help="listen address (default: %(default)s)")
    g.add_argument(
        "--grpc-port", type=_port, default=9090, help="listen port; 0 disables (default: 9090)"
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
    m = s.add_argument_group("process metrics")
    m.add_argument("--metrics-host", default="0.0.0.0", help="default: %(default)s")
    m.add_argument(
        "--metrics-port",
        type=_port,
        default=8080,
        help="/metrics, /healthz, /readyz; 0 disables (default: 8080)",
    )
    return parser


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
    for flag, path in (
        ("--grpc-tls-cert", args.grpc_tls_cert),
        ("--grpc-tls-key", args.grpc_tls_key),
        ("--grpc-client-ca", args.grpc_client_ca),
    ):
        if path is not None and not path.is_file():
            parser.error(f"{flag}: {path} is not a readable file")
    tls = TlsFiles(cert=args.grpc_tls_cert, key=args.grpc_tls_key, client_ca=args.grpc_client_ca)
    return GrpcSettings(host=args.grpc_host, port=args.grpc_port, tls=tls)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(args.log_level)
    if args.command == "serve":
        settings = ServeSettings(
            grpc=_grpc_settings(args, parser),
            metrics_host=args.metrics_host,
            metrics_port=args.metrics_port,
        )
        asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
