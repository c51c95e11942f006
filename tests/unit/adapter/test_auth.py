"""Authentication and authorization without sockets: the front-proxy certificate check, the
identity headers, and the compositions over TokenReview / SubjectAccessReview protocols."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from adapter import (
    AccessDecision,
    Attributes,
    BearerTokenAuthenticator,
    ChainAuthenticator,
    Credentials,
    ForbiddenError,
    FrontProxyAuthenticator,
    NonResourceAttributes,
    RequestHeaderSettings,
    ResourceAttributes,
    SubjectAccessAuthorizer,
    UnauthorizedError,
    UserInfo,
)
from adapter.auth import with_authenticated_group
from kits.clock import FakeClock
from tests.cluster import pki


@dataclass(frozen=True)
class Certs:
    ca_pem: bytes
    good: bytes
    wrong_name: bytes
    server_only: bytes
    foreign: bytes


def _der(pair: pki.KeyPair) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    return x509.load_pem_x509_certificate(pair.cert.read_bytes()).public_bytes(Encoding.DER)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    root: Path = tmp_path_factory.mktemp("front-proxy")
    ca = pki.new_ca(root, "fp-ca")
    other = pki.new_ca(root, "other-ca")
    return Certs(
        ca_pem=ca.files.cert.read_bytes(),
        good=_der(pki.issue(ca, root, "good", common_name="front-proxy-client", client=True)),
        wrong_name=_der(pki.issue(ca, root, "wrong", common_name="someone", client=True)),
        server_only=_der(
            pki.issue(ca, root, "server", common_name="front-proxy-client", server=True)
        ),
        foreign=_der(pki.issue(other, root, "foreign", common_name="front-proxy-client")),
    )


def headers(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


def authenticator(certs: Certs, **kwargs: object) -> FrontProxyAuthenticator:
    settings = RequestHeaderSettings(
        client_ca_pem=certs.ca_pem, allowed_names=("front-proxy-client",)
    )
    return FrontProxyAuthenticator(settings, **kwargs)  # type: ignore[arg-type]


async def test_identity_comes_from_the_headers(certs: Certs) -> None:
    credentials = Credentials(
        peer_certificate=certs.good,
        headers=headers(
            ("X-Remote-User", "alice"),
            ("X-Remote-Uid", "u-1"),
            ("X-Remote-Group", "devs"),
            ("x-remote-group", "ops"),
            ("X-Remote-Extra-Scopes", "read"),
            ("X-Remote-Extra-Scopes", "write"),
            ("X-Remote-Extra-Example.com%2FTeam", "blue"),
        ),
    )
    user = await authenticator(certs).authenticate(credentials)
    assert user == UserInfo(
        name="alice",
        uid="u-1",
        groups=("devs", "ops"),
        extra={"scopes": ("read", "write"), "example.com/team": ("blue",)},
    )


async def test_no_certificate_is_not_ours_and_no_user_header_names_nobody(certs: Certs) -> None:
    fp = authenticator(certs)
    assert await fp.authenticate(Credentials(None, headers(("X-Remote-User", "a")))) is None
    assert await fp.authenticate(Credentials(certs.good, headers())) is None


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("wrong_name", "common name 'someone' is not an allowed front proxy"),
        ("server_only", "not valid for client authentication"),
        ("foreign", "not signed by the requestheader client CA"),
    ],
)
async def test_unacceptable_certificates(certs: Certs, which: str, message: str) -> None:
    credentials = Credentials(getattr(certs, which), headers(("X-Remote-User", "a")))
    with pytest.raises(UnauthorizedError, match=message):
        await authenticator(certs).authenticate(credentials)


async def test_any_name_is_allowed_when_no_names_are_configured(certs: Certs) -> None:
    fp = FrontProxyAuthenticator(RequestHeaderSettings(client_ca_pem=certs.ca_pem))
    user = await fp.authenticate(Credentials(certs.wrong_name, headers(("X-Remote-User", "a"))))
    assert user is not None


async def test_expiry_is_noticed_even_for_a_remembered_certificate(certs: Certs) -> None:
    clock = FakeClock(dt.datetime.now(dt.UTC))
    fp = authenticator(certs, clock=clock)
    fp.verify(certs.good)
    clock.advance(dt.timedelta(days=400).total_seconds())
    with pytest.raises(UnauthorizedError, match="expired"):
        fp.verify(certs.good)


async def test_garbage_certificate_is_401(certs: Certs) -> None:
    with pytest.raises(UnauthorizedError, match="could not be parsed"):
        authenticator(certs).verify(b"not a certificate")


@dataclass
class Tokens:
    users: dict[str, UserInfo]

    async def review_token(self, token: str) -> UserInfo | None:
        return self.users.get(token)


async def test_chain_tries_the_next_after_a_rejection(certs: Certs) -> None:
    bob = UserInfo(name="bob")
    chain = ChainAuthenticator(authenticator(certs), BearerTokenAuthenticator(Tokens({"t": bob})))
    with_token = headers(("X-Remote-User", "a"), ("Authorization", "Bearer t"))
    assert await chain.authenticate(Credentials(certs.foreign, with_token)) == bob
    with pytest.raises(UnauthorizedError, match="not signed"):
        await chain.authenticate(Credentials(certs.foreign, headers(("X-Remote-User", "a"))))
    with pytest.raises(UnauthorizedError):
        await chain.authenticate(Credentials(None, headers(("Authorization", "Bearer nope"))))
    assert await chain.authenticate(Credentials(None, headers())) is None


@dataclass
class Reviews:
    allowed: set[str]
    asked: list[tuple[UserInfo, Attributes]] = field(default_factory=list)

    async def review_access(self, user: UserInfo, attributes: Attributes) -> AccessDecision:
        self.asked.append((user, attributes))
        return AccessDecision(allowed=user.name in self.allowed, reason="no RBAC rule")


async def test_subject_access_authorizer() -> None:
    reviews = Reviews(allowed={"hpa"})
    authorizer = SubjectAccessAuthorizer(reviews)
    attributes = ResourceAttributes(
        "get", "custom.metrics.k8s.io", "v1beta2", "pods", "rps", "shop", "*"
    )
    await authorizer.authorize(UserInfo("hpa"), attributes)
    await authorizer.authorize(UserInfo("root", groups=("system:masters",)), attributes)
    assert [u.name for u, _ in reviews.asked] == ["hpa"]
    with pytest.raises(ForbiddenError) as denied:
        await authorizer.authorize(UserInfo("eve"), attributes)
    assert denied.value.message == (
        "user 'eve' may not get 'pods/rps' of API group 'custom.metrics.k8s.io' in the "
        "namespace 'shop': no RBAC rule"
    )
    with pytest.raises(ForbiddenError, match="may not get path '/apis'"):
        await authorizer.authorize(UserInfo("eve"), NonResourceAttributes("get", "/apis"))


def test_authenticated_group_is_added_once() -> None:
    user = with_authenticated_group(UserInfo("a", groups=("g",)))
    assert user.groups == ("g", "system:authenticated")
    assert with_authenticated_group(user) == user
