"""`updraft serve` itself as a server on loopback, in standalone mode, for the tests that read
its doors and its /metrics: the console script of this virtualenv, three free ports (gRPC
without TLS, /metrics, the metrics API over HTTPS without authentication)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from tests.servers.process import ServerProcess, http_ok

UPDRAFT = str(Path(sys.executable).parent / "updraft")
"""The console script `make setup` installs beside this interpreter."""


def standalone_serve(config: Path, directory: Path) -> ServerProcess:
    """`updraft serve --standalone-config config`, started and ready; `ports` are gRPC,
    /metrics and the metrics API, in that order. The caller stops it."""
    return _started(
        ServerProcess(
            name="updraft",
            binary=UPDRAFT,
            ports=3,
            directory=directory,
            args=lambda ports, home: [
                *_doors(ports, "--grpc-plaintext"),
                "--bind-address=127.0.0.1",
                f"--secure-port={ports[2]}",
                f"--cert-dir={home / 'serving'}",
                f"--standalone-config={config}",
                "--insecure-no-auth",
            ],
        )
    )


def grpc_serve(
    directory: Path, *, tls: tuple[Path, Path] | None = None, name: str = "updraft"
) -> ServerProcess:
    """`updraft serve` with its gRPC door (TLS from `tls`, a certificate and key file, else
    plaintext) and /metrics only, the metrics API off; started and ready. `ports` are gRPC
    and /metrics. The caller stops it."""
    grpc = ["--grpc-plaintext"]
    if tls is not None:
        grpc = [f"--grpc-tls-cert={tls[0]}", f"--grpc-tls-key={tls[1]}"]
    return _started(
        ServerProcess(
            name=name,
            binary=UPDRAFT,
            ports=2,
            directory=directory,
            args=lambda ports, _: [*_doors(ports, *grpc), "--secure-port=0"],
        )
    )


def _doors(ports: Sequence[int], *grpc: str) -> list[str]:
    """`serve` with gRPC on `ports[0]` (`grpc`: its TLS flags) and /metrics on `ports[1]`."""
    return [
        "serve",
        "--grpc-host=127.0.0.1",
        f"--grpc-port={ports[0]}",
        *grpc,
        "--metrics-host=127.0.0.1",
        f"--metrics-port={ports[1]}",
    ]


def _started(process: ServerProcess) -> ServerProcess:
    """`process` started and answering /readyz on its second port (stopped if it does not)."""
    process.start()
    try:
        process.wait_ready(
            lambda: http_ok(f"http://127.0.0.1:{process.ports[1]}/readyz"), what="ready"
        )
    except BaseException:
        process.stop()
        raise
    return process
