"""The adapter over real HTTPS on a free loopback port, with a test PKI around it.

`pki` holds the serving pair the adapter generates for itself, a front-proxy CA (trusted for
request-header authentication), a plain client CA (trusted by TLS only) and a stranger CA
(trusted by nobody), with client certificates from each.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from adapter import (
    AdapterServer,
    Attributes,
    ForbiddenError,
    FrontProxyAuthenticator,
    RequestHeaderSettings,
    ResourceAttributes,
    ServingCertificate,
    ServingSettings,
    UserInfo,
    create_app,
    ensure_self_signed,
)
from tests.cluster import pki
from tests.unit.adapter.fakes import FakeCustomMetrics, FakeExternalMetrics

FRONT_PROXY_CN = "front-proxy-client"


@dataclass(frozen=True)
class AdapterPKI:
    serving: Path
    """The directory `ensure_self_signed` wrote into."""
    serving_ca: Path
    front_proxy_ca: Path
    client_ca: Path
    front_proxy: pki.KeyPair
    wrong_name: pki.KeyPair
    from_client_ca: pki.KeyPair
    from_stranger: pki.KeyPair


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory: pytest.TempPathFactory) -> AdapterPKI:
    root = tmp_path_factory.mktemp("adapter-pki")
    serving = ensure_self_signed(root / "serving", service="updraft-adapter", namespace="updraft")
    front_proxy_ca = pki.new_ca(root, "front-proxy-ca")
    client_ca = pki.new_ca(root, "client-ca")
    stranger = pki.new_ca(root, "stranger-ca")
    return AdapterPKI(
        serving=root / "serving",
        serving_ca=serving.ca_file,
        front_proxy_ca=front_proxy_ca.files.cert,
        client_ca=client_ca.files.cert,
        front_proxy=pki.issue(front_proxy_ca, root, "fp", common_name=FRONT_PROXY_CN, client=True),
        wrong_name=pki.issue(front_proxy_ca, root, "fp-other", common_name="intruder", client=True),
        from_client_ca=pki.issue(client_ca, root, "cc", common_name=FRONT_PROXY_CN, client=True),
        from_stranger=pki.issue(stranger, root, "st", common_name=FRONT_PROXY_CN, client=True),
    )


@dataclass
class RecordingAuthorizer:
    """Denies the user `denied`; remembers every decision's attributes."""

    seen: list[Attributes] = field(default_factory=list)

    async def authorize(self, user: UserInfo, attributes: Attributes) -> None:
        self.seen.append(attributes)
        if user.name == "denied":
            what = attributes.resource if isinstance(attributes, ResourceAttributes) else ""
            raise ForbiddenError(f"user {user.name!r} may not read {what!r}")


@dataclass
class Adapter:
    url: str
    port: int
    external: FakeExternalMetrics
    custom: FakeCustomMetrics
    authorizer: RecordingAuthorizer
    certificate: ServingCertificate
    readiness: list[bool]


@pytest.fixture
async def adapter(test_pki: AdapterPKI, tmp_path: Path) -> AsyncIterator[Adapter]:
    # A copy of the serving pair per test, so a reload test can swap its files.
    cert = tmp_path / "tls.crt"
    key = tmp_path / "tls.key"
    cert.write_bytes((test_pki.serving / "tls.crt").read_bytes())
    key.write_bytes((test_pki.serving / "tls.key").read_bytes())
    certificate = ServingCertificate(
        ServingSettings(
            cert_file=cert,
            key_file=key,
            client_ca_pems=(
                test_pki.front_proxy_ca.read_bytes(),
                test_pki.client_ca.read_bytes(),
            ),
            poll_interval=0.05,
        )
    )
    external = FakeExternalMetrics()
    custom = FakeCustomMetrics()
    authorizer = RecordingAuthorizer()
    readiness = [True]
    app = create_app(
        external=external,
        custom=custom,
        authenticator=FrontProxyAuthenticator(
            RequestHeaderSettings(
                client_ca_pem=test_pki.front_proxy_ca.read_bytes(),
                allowed_names=(FRONT_PROXY_CN,),
            )
        ),
        authorizer=authorizer,
        ready=lambda: readiness[0],
        version="0.1.0",
    )
    server = AdapterServer(app, certificate=certificate, host="127.0.0.1", port=0)
    await server.start()
    try:
        yield Adapter(
            url=f"https://127.0.0.1:{server.port}",
            port=server.port,
            external=external,
            custom=custom,
            authorizer=authorizer,
            certificate=certificate,
            readiness=readiness,
        )
    finally:
        await server.close()


ClientFactory = Callable[..., aiohttp.ClientSession]


def client_context(test_pki: AdapterPKI, client_cert: pki.KeyPair | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(test_pki.serving_ca))
    if client_cert is not None:
        context.load_cert_chain(client_cert.cert, client_cert.key)
    return context


@pytest.fixture
async def session_for(test_pki: AdapterPKI) -> AsyncIterator[ClientFactory]:
    """Sessions that trust the adapter's CA, presenting the front-proxy certificate (or the one
    given, or none with `cert=None`) and the front-proxy identity headers; closed at the end."""
    sessions: list[aiohttp.ClientSession] = []
    default = object()

    def make(
        cert: pki.KeyPair | object | None = default,
        *,
        user: str = "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
        groups: tuple[str, ...] = ("system:serviceaccounts",),
    ) -> aiohttp.ClientSession:
        chosen = test_pki.front_proxy if cert is default else cert
        assert chosen is None or isinstance(chosen, pki.KeyPair)
        headers: list[tuple[str, str]] = [("X-Remote-User", user)]
        headers += [("X-Remote-Group", g) for g in groups]
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=client_context(test_pki, chosen)),
            headers=headers,
        )
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        await session.close()
