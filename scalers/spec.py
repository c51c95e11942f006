"""``TriggerSpec``: what a trigger asks for, and the identity the cache keys it by.

A spec is plain data: the scaler type, KEDA-style metadata and resolved auth values. It does not
validate (scalers do, see ``registry``) and it never shows auth values: ``repr``/``str`` redact
them and the identity carries only a keyed digest of them.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from scalers.errors import REDACTED

__all__ = ["SpecIdentity", "TriggerSpec"]

# Hashes of auth values must not be a lookup table for guessable secrets across processes.
# A per-process random key is enough: identities are only compared within one process.
_AUTH_DIGEST_KEY = secrets.token_bytes(32)

SpecIdentity = tuple[str, tuple[tuple[str, str], ...], str]
"""(type, metadata items sorted by key, keyed digest of the auth values)."""


def _auth_digest(auth: Mapping[str, str]) -> str:
    digest = hashlib.blake2b(key=_AUTH_DIGEST_KEY, digest_size=16)
    for key, value in sorted(auth.items()):
        # Length-prefix both parts so ("ab", "c") and ("a", "bc") cannot collide.
        for part in (key, value):
            raw = part.encode("utf-8", "surrogatepass")
            digest.update(len(raw).to_bytes(8, "big"))
            digest.update(raw)
    return digest.hexdigest()


@dataclass(frozen=True, eq=False, repr=False)
class TriggerSpec:
    """One trigger: ``type``, ``metadata`` (KEDA key names) and resolved ``auth`` values.

    Equal specs (same type, metadata and auth) have equal ``identity`` and hash alike.
    """

    type: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    auth: Mapping[str, str] = field(default_factory=dict)
    identity: SpecIdentity = field(init=False)

    def __post_init__(self) -> None:
        # Copy, so a caller mutating its dict cannot change a spec the cache already keyed.
        metadata = MappingProxyType(dict(self.metadata))
        auth = MappingProxyType(dict(self.auth))
        object.__setattr__(self, "metadata", metadata)
        object.__setattr__(self, "auth", auth)
        identity = (self.type, tuple(sorted(metadata.items())), _auth_digest(auth))
        object.__setattr__(self, "identity", identity)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TriggerSpec):
            return NotImplemented
        return self.identity == other.identity

    def __hash__(self) -> int:
        return hash(self.identity)

    def __repr__(self) -> str:
        auth = {key: REDACTED for key in sorted(self.auth)}
        return f"TriggerSpec(type={self.type!r}, metadata={dict(self.metadata)!r}, auth={auth!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        # Pickling would write auth values out in the clear; nothing here needs it.
        raise TypeError("TriggerSpec is not picklable (it holds secrets)")
