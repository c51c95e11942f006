"""Serving TLS without sockets: self-signed generation and the reload decision."""

from __future__ import annotations

import ipaddress
import logging
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from adapter import ServingCertificate, ServingSettings, ensure_self_signed


def test_self_signed_pair_names_the_service(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        pair = ensure_self_signed(tmp_path / "certs", service="adapter", namespace="updraft")
    assert "self-signed" in caplog.text
    leaf = x509.load_pem_x509_certificate(pair.cert_file.read_bytes())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "adapter.updraft.svc" in sans.get_values_for_type(x509.DNSName)
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert pair.key_file.stat().st_mode & 0o077 == 0
    ca = x509.load_pem_x509_certificate(pair.ca_file.read_bytes())
    leaf.verify_directly_issued_by(ca)
    # A second call keeps the pair (restarts must not invalidate a caBundle).
    again = ensure_self_signed(tmp_path / "certs", service="adapter", namespace="updraft")
    assert again.cert_file.read_bytes() == pair.cert_file.read_bytes()


def test_reload_only_on_change_and_never_to_a_broken_pair(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = ensure_self_signed(tmp_path / "a", service="s", namespace="n")
    second = ensure_self_signed(tmp_path / "b", service="s", namespace="n")
    certificate = ServingCertificate(ServingSettings(first.cert_file, first.key_file))
    assert certificate.context.verify_mode is ssl.CERT_NONE  # no client CA configured
    initial = certificate.current
    assert certificate.reload_if_changed() is False

    first.key_file.write_bytes(second.key_file.read_bytes())  # key no longer matches
    assert certificate.reload_if_changed() is False
    assert certificate.current is initial
    assert "could not be loaded" in caplog.text

    first.cert_file.write_bytes(second.cert_file.read_bytes())
    assert certificate.reload_if_changed() is True
    assert certificate.current is not initial


def test_client_certificates_are_optional_when_a_client_ca_is_given(tmp_path: Path) -> None:
    pair = ensure_self_signed(tmp_path, service="s", namespace="n")
    certificate = ServingCertificate(
        ServingSettings(pair.cert_file, pair.key_file, client_ca_pems=(pair.ca_file.read_bytes(),))
    )
    assert certificate.context.verify_mode is ssl.CERT_OPTIONAL
