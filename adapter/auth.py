"""Authentication and authorization hook points of the adapter.

Owns the identity type, the `Authenticator` / `Authorizer` protocols the middleware calls, the
`TokenReviewer` / `AccessReviewer` protocols `kube` will implement (TokenReview and
SubjectAccessReview calls to kube-apiserver), the compositions over them, `AllowAll` (for
`--insecure-no-auth` only) and the aiohttp middleware. It must not talk to Kubernetes itself and
must not verify certificates (that is `frontproxy.py`).

Order of a request: probes (`/healthz`, `/livez`, `/readyz`) pass untouched, as kubelet sends no
credentials; every other request is authenticated (401 on failure), gains the group
`system:authenticated`, and is authorized with the attributes kube-apiserver would put in a
SubjectAccessReview (403 on denial).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware
from multidict import CIMultiDictProxy

from adapter.errors import Details, ForbiddenError, UnauthorizedError
from adapter.paths import Attributes, ResourceAttributes, request_attributes

logger = logging.getLogger(__name__)

AUTHENTICATED_GROUP = "system:authenticated"
MASTERS_GROUP = "system:masters"
PROBE_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
"""Always allowed, as in kube-apiserver: kubelet probes carry no credentials."""


@dataclass(frozen=True)
class UserInfo:
    """Who is asking, as a SubjectAccessReview carries it."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


ANONYMOUS = UserInfo(name="system:anonymous", groups=("system:unauthenticated",))


@dataclass(frozen=True)
class Credentials:
    """What a request presents: the TLS peer certificate (DER, None without one) and headers."""

    peer_certificate: bytes | None
    headers: CIMultiDictProxy[str]

    @property
    def bearer_token(self) -> str | None:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        return token.strip() or None if scheme.lower() == "bearer" else None


class Authenticator(Protocol):
    async def authenticate(self, credentials: Credentials) -> UserInfo | None:
        """The user these credentials prove; None when they carry nothing of this kind (the
        next authenticator may try); raise `UnauthorizedError` when they are of this kind but
        bad."""
        ...


class Authorizer(Protocol):
    async def authorize(self, user: UserInfo, attributes: Attributes) -> None:
        """Return when `user` may do `attributes`; raise `ForbiddenError` otherwise."""
        ...


class TokenReviewer(Protocol):
    """A TokenReview (authentication.k8s.io/v1) against kube-apiserver; `kube` implements it."""

    async def review_token(self, token: str) -> UserInfo | None:
        """The user the token belongs to, or None when kube-apiserver says unauthenticated."""
        ...


@dataclass(frozen=True)
class AccessDecision:
    allowed: bool
    reason: str = ""


class AccessReviewer(Protocol):
    """A SubjectAccessReview (authorization.k8s.io/v1); `kube` implements it (with the 10 s
    allow/deny cache kube-apiserver's webhook authorizer keeps)."""

    async def review_access(self, user: UserInfo, attributes: Attributes) -> AccessDecision: ...


class BearerTokenAuthenticator:
    """Authenticates `Authorization: Bearer` tokens through a `TokenReviewer`."""

    def __init__(self, reviewer: TokenReviewer) -> None:
        self._reviewer = reviewer

    async def authenticate(self, credentials: Credentials) -> UserInfo | None:
        token = credentials.bearer_token
        if token is None:
            return None
        user = await self._reviewer.review_token(token)
        if user is None:
            raise UnauthorizedError()
        return user


class ChainAuthenticator:
    """Tries each authenticator in order; the first user wins. A rejection by one does not stop
    the others (a bad client certificate beside a good token still authenticates, as in Go)."""

    def __init__(self, *authenticators: Authenticator) -> None:
        self._authenticators = authenticators

    async def authenticate(self, credentials: Credentials) -> UserInfo | None:
        rejection: UnauthorizedError | None = None
        for authenticator in self._authenticators:
            try:
                user = await authenticator.authenticate(credentials)
            except UnauthorizedError as exc:
                rejection = rejection or exc
                continue
            if user is not None:
                return user
        if rejection is not None:
            raise rejection
        return None


class SubjectAccessAuthorizer:
    """Authorizes through an `AccessReviewer`; members of `system:masters` skip the review, as
    kube-apiserver lets them."""

    def __init__(self, reviewer: AccessReviewer) -> None:
        self._reviewer = reviewer

    async def authorize(self, user: UserInfo, attributes: Attributes) -> None:
        if MASTERS_GROUP in user.groups:
            return
        decision = await self._reviewer.review_access(user, attributes)
        if not decision.allowed:
            raise forbidden(user, attributes, decision.reason)


def forbidden(user: UserInfo, attributes: Attributes, reason: str = "") -> ForbiddenError:
    """A 403 whose message names the user, the verb and what was asked for."""
    why = f": {reason}" if reason else ""
    if isinstance(attributes, ResourceAttributes):
        what = attributes.resource
        if attributes.subresource:
            what += "/" + attributes.subresource
        where = f" in the namespace {attributes.namespace!r}" if attributes.namespace else ""
        return ForbiddenError(
            f"user {user.name!r} may not {attributes.verb} {what!r} of API group "
            f"{attributes.group!r}{where}{why}",
            details=Details(name=attributes.name, group=attributes.group, kind=what),
        )
    return ForbiddenError(
        f"user {user.name!r} may not {attributes.verb} path {attributes.path!r}{why}"
    )


class AllowAll:
    """Lets everyone do everything as `system:anonymous`. Only for `--insecure-no-auth`: with it
    anyone who reaches the port reads every metric."""

    async def authenticate(self, credentials: Credentials) -> UserInfo | None:
        return ANONYMOUS

    async def authorize(self, user: UserInfo, attributes: Attributes) -> None:
        return None


def peer_certificate(request: web.Request) -> bytes | None:
    """The DER bytes of the client certificate of `request`'s TLS connection, if any."""
    transport = request.transport
    if transport is None:
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return bytes(der) if der else None


USER = web.RequestKey("user", UserInfo)
"""The authenticated user of a request, for handlers and logs."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def with_authenticated_group(user: UserInfo) -> UserInfo:
    if user is ANONYMOUS or AUTHENTICATED_GROUP in user.groups:
        return user
    return UserInfo(
        name=user.name, uid=user.uid, groups=(*user.groups, AUTHENTICATED_GROUP), extra=user.extra
    )


def auth_middleware(authenticator: Authenticator, authorizer: Authorizer) -> Middleware:
    """The aiohttp middleware that authenticates and authorizes every non-probe request."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PROBE_PATHS:
            return await handler(request)
        credentials = Credentials(
            peer_certificate=peer_certificate(request), headers=request.headers
        )
        user = await authenticator.authenticate(credentials)
        if user is None:
            raise UnauthorizedError()
        user = with_authenticated_group(user)
        await authorizer.authorize(user, request_attributes(request.method, request.path))
        request[USER] = user
        return await handler(request)

    return middleware
