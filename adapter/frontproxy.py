"""The front-proxy (request-header) authenticator: trusting kube-apiserver's identity headers.

Owns the pure part of request-header authentication: given the TLS peer certificate, decide
whether it is a front-proxy client certificate (signed by a CA of the requestheader bundle,
valid now, usable for client auth, CN among the allowed names), and if so read the user from
`X-Remote-User`, the groups from every `X-Remote-Group`, and extra from `X-Remote-Extra-<key>`.
It must not read the `extension-apiserver-authentication` ConfigMap (`kube` will, and build a
new `RequestHeaderSettings` when it changes) and must not touch sockets.

Limits: the leaf must be signed directly by a CA in the bundle. Python 3.11's `ssl` exposes only
the peer's leaf certificate, not the chain it sent, so intermediates cannot be checked here
(kube-apiserver's front-proxy client certificate is issued directly by the front-proxy CA).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from adapter.auth import Credentials, UserInfo
from adapter.errors import UnauthorizedError
from kits import Clock, SystemClock

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RequestHeaderSettings:
    """The `requestheader-*` settings of `kube-system/extension-apiserver-authentication`."""

    client_ca_pem: bytes
    """`requestheader-client-ca-file`: the CA bundle that signs the front-proxy certificate."""
    allowed_names: tuple[str, ...] = ()
    """`requestheader-allowed-names`; empty means any CN the CA signed, as in Kubernetes."""
    username_headers: tuple[str, ...] = ("X-Remote-User",)
    """The kube-apiserver defaults; the ConfigMap lists the ones a cluster uses."""
    uid_headers: tuple[str, ...] = ("X-Remote-Uid",)
    group_headers: tuple[str, ...] = ("X-Remote-Group",)
    extra_headers_prefixes: tuple[str, ...] = ("X-Remote-Extra-",)


_VERIFIED_CACHE_SIZE = 64
"""Distinct client certificates remembered as verified: kube-apiserver replicas use one front
proxy certificate each, so a handful suffices and a flood of other certificates stays bounded."""


class FrontProxyAuthenticator:
    """An `Authenticator` for requests proxied by kube-apiserver's aggregation layer."""

    def __init__(
        self,
        settings: RequestHeaderSettings,
        *,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self.replace_settings(settings)

    @property
    def settings(self) -> RequestHeaderSettings:
        return self._settings

    def replace_settings(self, settings: RequestHeaderSettings) -> None:
        """Trust `settings` from now on (kube-apiserver rotated its front-proxy CA); certificates
        verified under the old trust are verified again."""
        cas = x509.load_pem_x509_certificates(settings.client_ca_pem)
        self._settings = settings
        self._extra_prefixes = tuple(p.lower() for p in settings.extra_headers_prefixes)
        self._cas = cas
        self._verified: dict[bytes, dt.datetime] = {}
        """DER of a verified leaf -> the end of its validity (so expiry is still noticed)."""

    async def authenticate(self, credentials: Credentials) -> UserInfo | None:
        if credentials.peer_certificate is None:
            return None
        self.verify(credentials.peer_certificate)
        return self._user(credentials)

    def verify(self, der: bytes) -> None:
        """Return if `der` is an acceptable front-proxy certificate; raise `UnauthorizedError`."""
        now = self._clock.now()
        until = self._verified.get(der)
        if until is not None and now <= until:
            return
        try:
            leaf = x509.load_der_x509_certificate(der)
        except ValueError as exc:
            raise UnauthorizedError("client certificate could not be parsed") from exc
        self._check_chain(leaf, now)
        self._check_usage(leaf)
        self._check_name(leaf)
        if len(self._verified) >= _VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[der] = leaf.not_valid_after_utc

    def _check_chain(self, leaf: x509.Certificate, now: dt.datetime) -> None:
        if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
            raise UnauthorizedError("client certificate is expired or not yet valid")
        for ca in self._cas:
            if ca.subject != leaf.issuer or not _is_ca(ca):
                continue
            if not ca.not_valid_before_utc <= now <= ca.not_valid_after_utc:
                continue
            try:
                leaf.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return
        raise UnauthorizedError("client certificate is not signed by the requestheader client CA")

    @staticmethod
    def _check_usage(leaf: x509.Certificate) -> None:
        try:
            usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            return  # no restriction, as Go's verifier reads it
        if ExtendedKeyUsageOID.CLIENT_AUTH not in usages and (
            ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in usages
        ):
            raise UnauthorizedError("client certificate is not valid for client authentication")

    def _check_name(self, leaf: x509.Certificate) -> None:
        if not self._settings.allowed_names:
            return
        names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        common_name = str(names[0].value) if names else ""
        if common_name not in self._settings.allowed_names:
            raise UnauthorizedError(
                f"client certificate common name {common_name!r} is not an allowed front proxy"
            )

    def _user(self, credentials: Credentials) -> UserInfo | None:
        headers = credentials.headers
        settings = self._settings
        name = _first(headers.getall(h, []) for h in settings.username_headers)
        if not name:
            return None  # the certificate is fine but names nobody: not ours to decide
        uid = _first(headers.getall(h, []) for h in settings.uid_headers)
        groups = tuple(
            value for h in settings.group_headers for value in headers.getall(h, []) if value
        )
        extra: dict[str, list[str]] = {}
        for prefix in self._extra_prefixes:
            for header, value in headers.items():
                if header.lower().startswith(prefix):
                    # Lowercase, then unescape: the order kube-apiserver uses.
                    key = unquote(header[len(prefix) :].lower())
                    extra.setdefault(key, []).append(value)
        return UserInfo(
            name=name,
            uid=uid,
            groups=groups,
            extra={key: tuple(values) for key, values in extra.items()},
        )


def _first(value_lists: Iterable[Iterable[str]]) -> str:
    for values in value_lists:
        for value in values:
            if value:
                return value
    return ""


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False
