"""`updraft serve` itself as a server on loopback, in standalone mode, for the tests that read
its doors and its /metrics: the console script of this virtualenv, three free ports (gRPC
without TLS, /metrics, the metrics API over HTTPS without authentication)."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.servers.process import ServerProcess, http_ok

UPDRAFT = str(Path(sys.executable).parent / "updraft")
"""The console script `make setup` installs beside this interpreter."""


def standalone_serve(config: Path, directory: Path) -> ServerProcess:
    """`updraft serve --standalone-config config`, started and ready; `ports` are gRPC,
    /metrics and the metrics API, in that order. The caller stops it."""
    process = ServerProcess(
        name="updraft",
        binary=UPDRAFT,
        ports=3,
        directory=directory,
        args=lambda ports, home: [
            "serve",
            "--grpc-host=127.0.0.1",
            f"--grpc-port={ports[0]}",
            "--grpc-plaintext",
            "--metrics-host=127.0.0.1",
            f"--metrics-port={ports[1]}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports[2]}",
            f"--cert-dir={home / 'serving'}",
            f"--standalone-config={config}",
            "--insecure-no-auth",
        ],
    )
    process.start()
    try:
        process.wait_ready(
            lambda: http_ok(f"http://127.0.0.1:{process.ports[1]}/readyz"), what="ready"
        )
    except BaseException:
        process.stop()
        raise
    return process
