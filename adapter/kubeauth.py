"""Delegated authentication and authorization through kube-apiserver, as an aggregated API
server does it: TokenReview for bearer tokens, SubjectAccessReview for every request (decisions
cached briefly), and the front-proxy trust kube-apiserver publishes in
kube-system/extension-apiserver-authentication.

Owns mapping `kube`'s raw review calls onto the adapter's `TokenReviewer` / `AccessReviewer`
protocols. A review that cannot be made (apiserver unreachable) is a 503, never an allow.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Generic, TypeVar, cast

import aiohttp

from adapter.auth import AccessDecision, UserInfo
from adapter.errors import UnavailableError
from adapter.frontproxy import FrontProxyAuthenticator, RequestHeaderSettings
from adapter.paths import Attributes, ResourceAttributes
from adapter.tls import ServingCertificate
from kits import Clock, SystemClock, cancel_and_wait
from kube import Api, ApiError, request_header_trust, subject_access_review, token_review

log = logging.getLogger(__name__)

_FAILURES = (ApiError, aiohttp.ClientError, OSError, TimeoutError)


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MISS = object()


class _Expiring(Generic[K, V]):
    """A bounded map whose entries expire `ttl` seconds after they were put (oldest evicted)."""

    def __init__(self, *, ttl: float, max_entries: int, clock: Clock) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | object:
        """The live value for `key`, or `_MISS`."""
        hit = self._entries.get(key)
        if hit is None or self._clock.monotonic() >= hit[0]:
            return _MISS
        return hit[1]

    def put(self, key: K, value: V) -> None:
        self._entries[key] = (self._clock.monotonic() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


class KubeTokenReviewer:
    """`TokenReviewer` by TokenReview; results cached for `ttl` seconds (kube-apiserver's
    webhook token authenticator caches for 2 min; 10 s keeps revocation quick)."""

    def __init__(
        self,
        api: Api,
        *,
        ttl: float = 10.0,
        max_entries: int = 1024,
        clock: Clock | None = None,
    ) -> None:
        self._api = api
        self._cache: _Expiring[str, UserInfo | None] = _Expiring(
            ttl=ttl, max_entries=max_entries, clock=clock or SystemClock()
        )

    async def review_token(self, token: str) -> UserInfo | None:
        hit = self._cache.get(token)
        if hit is not _MISS:
            return cast(UserInfo | None, hit)
        try:
            status = await token_review(self._api, token)
        except _FAILURES as e:
            raise UnavailableError(
                f"cannot review the bearer token with kube-apiserver: {e}"
            ) from None
        user: UserInfo | None = None
        if status.get("authenticated"):
            raw = status.get("user") or {}
            user = UserInfo(
                name=str(raw.get("username", "")),
                uid=str(raw.get("uid", "")),
                groups=tuple(raw.get("groups") or ()),
                extra={k: tuple(v) for k, v in (raw.get("extra") or {}).items()},
            )
        self._cache.put(token, user)
        return user


def _sar_spec(user: UserInfo, attributes: Attributes) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "user": user.name,
        "uid": user.uid,
        "groups": list(user.groups),
        "extra": {k: list(v) for k, v in user.extra.items()},
    }
    if isinstance(attributes, ResourceAttributes):
        spec["resourceAttributes"] = {
            "verb": attributes.verb,
            "group": attributes.group,
            "version": attributes.version,
            "resource": attributes.resource,
            "subresource": attributes.subresource,
            "namespace": attributes.namespace,
            "name": attributes.name,
        }
    else:
        spec["nonResourceAttributes"] = {"verb": attributes.verb, "path": attributes.path}
    return spec


class KubeAccessReviewer:
    """`AccessReviewer` by SubjectAccessReview, with the 10 s allow/deny cache kube-apiserver's
    webhook authorizer keeps (the HPA asks the same question every sync)."""

    def __init__(
        self,
        api: Api,
        *,
        ttl: float = 10.0,
        max_entries: int = 4096,
        clock: Clock | None = None,
    ) -> None:
        self._api = api
        self._cache: _Expiring[tuple[Any, ...], AccessDecision] = _Expiring(
            ttl=ttl, max_entries=max_entries, clock=clock or SystemClock()
        )

    async def review_access(self, user: UserInfo, attributes: Attributes) -> AccessDecision:
        key = (user.name, user.uid, user.groups, tuple(sorted(user.extra.items())), attributes)
        hit = self._cache.get(key)
        if isinstance(hit, AccessDecision):
            return hit
        try:
            status = await subject_access_review(self._api, _sar_spec(user, attributes))
        except _FAILURES as e:
            raise UnavailableError(f"cannot review access with kube-apiserver: {e}") from None
        decision = AccessDecision(
            allowed=bool(status.get("allowed")) and not status.get("denied"),
            reason=str(status.get("reason", "")),
        )
        self._cache.put(key, decision)
        return decision


async def request_header_settings(api: Api) -> RequestHeaderSettings | None:
    """The front-proxy trust kube-apiserver published, as the adapter's settings."""
    trust = await request_header_trust(api)
    if trust is None:
        return None
    return RequestHeaderSettings(
        client_ca_pem=trust.client_ca_pem.encode(),
        allowed_names=trust.allowed_names,
        username_headers=trust.username_headers or ("X-Remote-User",),
        group_headers=trust.group_headers or ("X-Remote-Group",),
        extra_headers_prefixes=trust.extra_headers_prefixes or ("X-Remote-Extra-",),
    )


class RequestHeaderWatcher:
    """Re-reads kube-apiserver's front-proxy trust every `interval` seconds and, when it
    changed (a rotated front-proxy CA), hands it to the authenticator and to the TLS layer, so
    requests keep authenticating without a restart."""

    def __init__(
        self,
        api: Api,
        authenticator: FrontProxyAuthenticator,
        certificate: ServingCertificate,
        *,
        interval: float = 60.0,
    ) -> None:
        self._api = api
        self._authenticator = authenticator
        self._certificate = certificate
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> bool:
        """One re-read; True if the trust changed and is now in force."""
        fresh = await request_header_settings(self._api)
        if fresh is None or fresh == self._authenticator.settings:
            return False
        self._certificate.set_client_cas((fresh.client_ca_pem,))
        self._authenticator.replace_settings(fresh)
        log.info("kube-apiserver's front-proxy trust changed; now verifying with the new CA")
        return True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.refresh()
            except (*_FAILURES, ValueError, ssl.SSLError) as e:
                log.warning("re-reading extension-apiserver-authentication failed: %s", e)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="requestheader-watcher")

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
