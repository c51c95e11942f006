"""Shared aiohttp sessions for HTTP scalers: one per (server origin, TLS settings).

Thousands of triggers usually point at a handful of servers; giving each its own connection pool
is what made KEDA drop polls at scale (kedacore/keda#7789). Scalers ``lease`` a session and
``release`` it on close; the last release closes the session. Auth headers are per request, so
they are not part of the key; TLS client certificates are (a connection carries them).
"""

from __future__ import annotations

import hashlib
import os
import ssl
import tempfile
from dataclasses import dataclass

import aiohttp

from scalers.pool import Holding, Lease, RefCountedPool

__all__ = ["SessionKey", "SessionLease", "SessionPool", "TlsMaterial"]


@dataclass(frozen=True, slots=True, repr=False)
class TlsMaterial:
    """PEM contents (not paths), as KEDA's TriggerAuthentication carries them."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    def digest(self) -> str:
        digest = hashlib.sha256()
        for part in (self.ca, self.cert, self.key):
            digest.update(b"\x00" if part is None else b"\x01" + part.encode())
        return digest.hexdigest()

    def __repr__(self) -> str:
        return "TlsMaterial(<redacted>)"


@dataclass(frozen=True, slots=True)
class SessionKey:
    origin: str
    """scheme://host:port of the server."""
    unsafe_ssl: bool
    tls_digest: str
    """``TlsMaterial.digest()``: different client certs must not share connections."""


def ssl_context(material: TlsMaterial, *, unsafe: bool) -> ssl.SSLContext:
    """An SSL context from PEM strings; raises ``ssl.SSLError``/``ValueError`` on bad PEM."""
    context = (
        ssl.create_default_context(cadata=material.ca)
        if material.ca
        else (ssl.create_default_context())
    )
    if unsafe:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if material.cert and material.key:
        # The ssl module loads client certificates only from files: write them to a private
        # directory for the duration of the call.
        with tempfile.TemporaryDirectory(prefix="updraft-tls-") as directory:
            cert_path = os.path.join(directory, "cert.pem")
            key_path = os.path.join(directory, "key.pem")
            for path, pem in ((cert_path, material.cert), (key_path, material.key)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(pem)
            context.load_cert_chain(cert_path, key_path)
    return context


class SessionLease(Lease[SessionKey, aiohttp.ClientSession]):
    """A scaler's hold on a pooled session; ``release()`` once, when the scaler closes."""

    def __init__(
        self,
        pool: RefCountedPool[SessionKey, aiohttp.ClientSession],
        key: SessionKey,
        holding: Holding[aiohttp.ClientSession],
    ) -> None:
        super().__init__(pool, key, holding)
        self.session = holding.value


async def _close_session(session: aiohttp.ClientSession) -> None:
    await session.close()


class SessionPool:
    """Reference-counted ``aiohttp.ClientSession`` per ``SessionKey``."""

    def __init__(self, *, connections_per_session: int = 64) -> None:
        self._limit = connections_per_session
        self._sessions: RefCountedPool[SessionKey, aiohttp.ClientSession] = RefCountedPool(
            close=_close_session
        )
        self._closed = False

    def __len__(self) -> int:
        return len(self._sessions)

    def lease(
        self, *, origin: str, unsafe_ssl: bool = False, tls: TlsMaterial | None = None
    ) -> SessionLease:
        """Share (or open) the session for this server and TLS settings. Needs a running loop."""
        if self._closed:
            raise RuntimeError("SessionPool is closed")
        material = tls or TlsMaterial()
        key = SessionKey(origin=origin, unsafe_ssl=unsafe_ssl, tls_digest=material.digest())

        def open_session() -> aiohttp.ClientSession:
            ssl_arg: ssl.SSLContext | bool
            if material.ca or material.cert:
                ssl_arg = ssl_context(material, unsafe=unsafe_ssl)
            else:
                ssl_arg = not unsafe_ssl
            connector = aiohttp.TCPConnector(limit=self._limit, ssl=ssl_arg)
            return aiohttp.ClientSession(connector=connector, raise_for_status=False)

        return SessionLease(self._sessions, key, self._sessions.hold(key, open_session))

    async def close(self) -> None:
        self._closed = True
        await self._sessions.close_all()
