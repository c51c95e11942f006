"""Server TLS for the gRPC front door, from files, picked up again when the files change.

Owns turning a cert/key pair (and an optional client CA for mutual TLS) into gRPC server
credentials whose configuration is re-read on the next handshake after any of the files
changes (cert-manager rotates them in place). A broken new pair is logged and the last good one
kept, so a half-written rotation never takes the server down.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc

from kits import FileStamp, file_stamp

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    client_ca: Path | None = None
    """When set, clients must present a certificate signed by it (mutual TLS)."""


def _stamp(files: TlsFiles) -> tuple[FileStamp | None, ...]:
    paths = [files.cert, files.key] + ([files.client_ca] if files.client_ca else [])
    return tuple(file_stamp(p) for p in paths)


def _load(files: TlsFiles) -> grpc.ServerCertificateConfiguration:
    cert = files.cert.read_bytes()
    key = files.key.read_bytes()
    if b"PRIVATE KEY" not in key or b"CERTIFICATE" not in cert:
        raise ValueError(f"{files.cert} / {files.key} are not a PEM certificate and key")
    ca = files.client_ca.read_bytes() if files.client_ca else None
    return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)


class ReloadingServerCredentials:
    """`credentials` re-read `files` when they change, checked at each new handshake."""

    def __init__(self, files: TlsFiles) -> None:
        self._files = files
        self._lock = threading.Lock()
        self._stamp = _stamp(files)
        self.reloads = 0
        self.credentials = grpc.dynamic_ssl_server_credentials(
            _load(files),
            self._fetch,
            require_client_authentication=files.client_ca is not None,
        )

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """gRPC calls this (on its own thread) before each handshake; None keeps the current
        configuration."""
        with self._lock:
            try:
                stamp = _stamp(self._files)
                if stamp == self._stamp:
                    return None
                config = _load(self._files)
            except (OSError, ValueError) as e:
                log.error("gRPC TLS files unreadable, keeping the previous pair: %s", e)
                return None
            self._stamp = stamp
            self.reloads += 1
            log.info("gRPC TLS files changed; serving the new certificate")
            return config
