"""The adapter's serving TLS: the SSL context, its live reload, and self-signed generation.

Owns building the server `ssl.SSLContext` from a certificate/key file pair (client certificates
requested but optional, verified against the configured client CA bundles so front-proxy
certificates can be checked), watching the pair for changes, and writing a self-signed pair when
none is configured. It must not authenticate anyone (`frontproxy.py` reads the peer certificate)
and must not know about HTTP.

How reload works: the context handed to the server is fixed for the life of the socket, so its
SNI callback (which OpenSSL calls for every handshake, with or without SNI) points each new
connection at the newest context. A reload builds a complete new context from a snapshot of the
files; if that fails (a half-written pair, a key that does not match) the old one stays and the
error is logged. Connections already open keep the certificate they started with.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import ipaddress
import logging
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kits import Clock, SystemClock, cancel_and_wait, file_stamp

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServingSettings:
    """Where the serving certificate comes from and how often it is re-read."""

    cert_file: Path
    key_file: Path
    client_ca_pems: tuple[bytes, ...] = ()
    """CA bundles whose client certificates the TLS layer accepts: the requestheader CA (and a
    client CA, if one is configured). A certificate from any other CA fails the handshake,
    because Python's `ssl` cannot request a certificate without verifying it; a certificate from
    one of these CAs that is not a front-proxy certificate gets a 401 from the authenticator."""
    poll_interval: float = 10.0
    """10 s: rotation tools renew long before expiry, so a 10 s lag costs nothing, and two
    stat() calls every 10 s are free."""


def build_context(
    cert_pem: bytes, key_pem: bytes, client_ca_pems: tuple[bytes, ...]
) -> ssl.SSLContext:
    """A server context for one certificate chain and key, held in memory as PEM."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # load_cert_chain reads only files, so the snapshot goes through a private directory.
    with tempfile.TemporaryDirectory(prefix="updraft-tls-") as scratch:
        cert_path = Path(scratch, "tls.crt")
        key_path = Path(scratch, "tls.key")
        cert_path.write_bytes(cert_pem)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key_pem)
        context.load_cert_chain(cert_path, key_path)
    for pem in client_ca_pems:
        context.load_verify_locations(cadata=pem.decode("ascii"))
    context.verify_mode = ssl.CERT_OPTIONAL if client_ca_pems else ssl.CERT_NONE
    return context


class ServingCertificate:
    """The serving certificate, reloaded when its files change.

    `context` is what the server listens with; `start()` begins polling the files and `close()`
    stops it. `reload_if_changed()` is the single poll step, also callable directly.
    """

    def __init__(self, settings: ServingSettings) -> None:
        self._settings = settings
        self._stamps = (file_stamp(settings.cert_file), file_stamp(settings.key_file))
        self._current = self._load()
        self.context = self._current
        self.context.sni_callback = self._pick_context
        self._task: asyncio.Task[None] | None = None

    def _load(self) -> ssl.SSLContext:
        return build_context(
            self._settings.cert_file.read_bytes(),
            self._settings.key_file.read_bytes(),
            self._settings.client_ca_pems,
        )

    def set_client_cas(self, client_ca_pems: tuple[bytes, ...]) -> None:
        """Accept client certificates from these CAs on new connections (a rotated front-proxy
        CA); raises, keeping the current context, if the new context cannot be built."""
        settings = dataclasses.replace(self._settings, client_ca_pems=client_ca_pems)
        fresh = build_context(
            settings.cert_file.read_bytes(), settings.key_file.read_bytes(), client_ca_pems
        )
        self._settings = settings
        self._current = fresh

    def _pick_context(
        self, ssl_object: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> None:
        if ssl_object.context is not self._current:
            ssl_object.context = self._current
        return None

    @property
    def current(self) -> ssl.SSLContext:
        """The context new connections get now."""
        return self._current

    def reload_if_changed(self) -> bool:
        """Re-read the pair if either file changed since the last attempt; True if the new pair
        is now served. A broken pair is logged and the previous one kept."""
        stamps = (file_stamp(self._settings.cert_file), file_stamp(self._settings.key_file))
        if stamps == self._stamps:
            return False
        self._stamps = stamps
        try:
            fresh = self._load()
        except (OSError, ssl.SSLError, ValueError) as exc:
            logger.error(
                "serving certificate %s / %s could not be loaded, still serving the previous "
                "one: %s",
                self._settings.cert_file,
                self._settings.key_file,
                exc,
            )
            return False
        self._current = fresh
        logger.info("serving certificate reloaded from %s", self._settings.cert_file)
        return True

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._settings.poll_interval)
            self.reload_if_changed()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._poll(), name="updraft-adapter-cert-reload"
            )

    async def close(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)


# --- self-signed generation --------------------------------------------------------------------

_SELF_SIGNED_VALIDITY = dt.timedelta(days=365)
"""A year, like the Go generic apiserver's own fallback; the pair is regenerated on a restart
once it is missing, and anyone who needs longer should give a real certificate."""


@dataclass(frozen=True)
class SelfSignedPair:
    ca_file: Path
    """The CA to put in the APIService's `caBundle`."""
    cert_file: Path
    key_file: Path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _announce(pair: SelfSignedPair, dns_name: str, how: str) -> None:
    logger.warning(
        "no serving certificate given: %s a self-signed one for %s, localhost and 127.0.0.1; "
        "the APIService caBundle must hold its CA, %s (keep TLS verification on)",
        how,
        dns_name,
        pair.ca_file,
    )


@dataclass(frozen=True)
class ServingPairPem:
    """A CA and a serving certificate it signed, as PEM: what a kubernetes.io/tls Secret holds
    (`ca.crt`, `tls.crt`, `tls.key`) and what an APIService's `caBundle` needs (`ca`)."""

    ca: bytes
    cert: bytes
    """The leaf followed by the CA, so clients that were given only the leaf can build the
    chain."""
    key: bytes


def serving_dns_names(*, service: str, namespace: str) -> tuple[str, ...]:
    """The names the aggregator and in-cluster clients use for a Service."""
    dns_name = f"{service}.{namespace}.svc"
    # `<service>.<namespace>` too: the short name a KEDA `scalerAddress` may use.
    return (dns_name, f"{dns_name}.cluster.local", f"{service}.{namespace}", "localhost")


def issue_serving_pair(
    *,
    service: str,
    namespace: str,
    now: dt.datetime,
    validity: dt.timedelta = _SELF_SIGNED_VALIDITY,
) -> ServingPairPem:
    """A fresh CA (EC P-256) and a serving pair it signed, valid for `serving_dns_names` and
    127.0.0.1."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"{service}-ca@{int(now.timestamp())}")]
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = serving_dns_names(service=service, namespace=namespace)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    *(x509.DNSName(name) for name in names),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    return ServingPairPem(
        ca=ca_pem, cert=leaf.public_bytes(serialization.Encoding.PEM) + ca_pem, key=_key_pem(key)
    )


def serving_pair_problem(
    pair: ServingPairPem, *, service: str, namespace: str, now: dt.datetime
) -> str | None:
    """Why `pair` cannot serve `<service>.<namespace>.svc` now, or None when it can: the leaf
    must parse, match the key, be signed by the CA, name the Service, and be valid for at least
    another tenth of its lifetime (so a rotation happens before clients see an expired one)."""
    try:
        ca = x509.load_pem_x509_certificate(pair.ca)
        leaf = x509.load_pem_x509_certificate(pair.cert)
        key = serialization.load_pem_private_key(pair.key, password=None)
    except ValueError as e:
        return f"does not parse: {e}"
    if key.public_key() != leaf.public_key():
        return "tls.key does not match tls.crt"
    try:
        leaf.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return "tls.crt is not signed by ca.crt"
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "tls.crt has no subjectAltName"
    wanted = f"{service}.{namespace}.svc"
    if wanted not in san.get_values_for_type(x509.DNSName):
        return f"tls.crt does not name {wanted}"
    start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    if now >= end - (end - start) / 10:
        return f"tls.crt expires at {end.isoformat()}"
    return None


def ensure_self_signed(
    directory: Path, *, service: str, namespace: str, clock: Clock | None = None
) -> SelfSignedPair:
    """A CA and a serving pair signed by it in `directory` (kept if already there), valid for
    `serving_dns_names` and 127.0.0.1. Logged once, at WARNING: the APIService must then trust
    this generated CA in its caBundle (never skip verification)."""
    pair = SelfSignedPair(directory / "ca.crt", directory / "tls.crt", directory / "tls.key")
    if pair.ca_file.exists() and pair.cert_file.exists() and pair.key_file.exists():
        _announce(pair, f"{service}.{namespace}.svc", "reusing")
        return pair
    directory.mkdir(parents=True, exist_ok=True)
    now = (clock or SystemClock()).now()
    pem = issue_serving_pair(service=service, namespace=namespace, now=now)
    dns_name = serving_dns_names(service=service, namespace=namespace)[0]
    pair.ca_file.write_bytes(pem.ca)
    pair.cert_file.write_bytes(pem.cert)
    fd = os.open(pair.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem.key)
    _announce(pair, dns_name, "generated")
    return pair
