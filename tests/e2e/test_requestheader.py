"""Following kube-apiserver's front-proxy trust: what it publishes in
kube-system/extension-apiserver-authentication replaces what the adapter trusted before, in the
authenticator and in the TLS layer alike."""

from __future__ import annotations

from pathlib import Path

from kubernetes_asyncio import client

from adapter.frontproxy import FrontProxyAuthenticator, RequestHeaderSettings
from adapter.kubeauth import RequestHeaderWatcher
from adapter.tls import ServingCertificate, ServingSettings
from kube import Api
from tests.cluster import pki
from tests.cluster.controlplane import ControlPlane


async def test_a_rotated_front_proxy_ca_is_picked_up(
    kube: client.ApiClient, control_plane: ControlPlane, tmp_path: Path
) -> None:
    old_ca = pki.new_ca(tmp_path, "old-front-proxy-ca")
    serving_ca = pki.new_ca(tmp_path, "serving-ca")
    serving = pki.issue(serving_ca, tmp_path, "serving", common_name="updraft", server=True)
    stale = RequestHeaderSettings(client_ca_pem=old_ca.files.cert.read_bytes())
    authenticator = FrontProxyAuthenticator(stale)
    certificate = ServingCertificate(
        ServingSettings(serving.cert, serving.key, client_ca_pems=(stale.client_ca_pem,))
    )
    watcher = RequestHeaderWatcher(Api(kube), authenticator, certificate, interval=3600)
    before = certificate.current

    assert await watcher.refresh() is True
    published = (control_plane.pki_dir / "front-proxy-ca.crt").read_bytes()
    assert authenticator.settings.client_ca_pem.strip() == published.strip()
    assert authenticator.settings.allowed_names == ("front-proxy-client",)
    assert authenticator.settings.username_headers == ("X-Remote-User",)
    # New connections get a TLS context that accepts the published CA's client certificates.
    assert certificate.current is not before
    trusted = " ".join(str(c["subject"]) for c in certificate.current.get_ca_certs())
    assert "updraft-test-front-proxy-ca" in trusted
    assert "old-front-proxy-ca" not in trusted
    # Nothing changed since: a second read leaves everything as it is.
    assert await watcher.refresh() is False
