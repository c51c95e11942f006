"""A NodePool's disruption settings, read from its JSON, and the hashes that tell drift.

Owns ``PoolPolicy`` (consolidationPolicy, consolidateAfter, expireAfter, budgets, the
template hash).
The hashes themselves are ``objects``' (the launch writes them on each
NodeClaim). The NodePool controller has validated the fields already; a pool that does not
validate is never read here. It must not decide anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provisioner.disruption.budgets import Budget, budgets_of
from provisioner.objects import nodeclass_hash, parse_duration, template_hash

__all__ = [
    "DEFAULT_EXPIRE_AFTER",
    "WHEN_EMPTY",
    "WHEN_EMPTY_OR_UNDERUTILIZED",
    "PoolPolicy",
    "nodeclass_hash",
    "template_hash",
]

WHEN_EMPTY = "WhenEmpty"
WHEN_EMPTY_OR_UNDERUTILIZED = "WhenEmptyOrUnderutilized"
DEFAULT_EXPIRE_AFTER = 720 * 3600.0
"""Karpenter v1's default: 30 days, so every node is renewed at least monthly."""


@dataclass(frozen=True)
class PoolPolicy:
    name: str
    consolidation_policy: str = WHEN_EMPTY_OR_UNDERUTILIZED
    consolidate_after: float | None = 0.0
    """Seconds after the last pod event before a node may be consolidated; None: Never."""
    expire_after: float | None = DEFAULT_EXPIRE_AFTER
    """None: Never."""
    budgets: tuple[Budget, ...] = (Budget(nodes="10%"),)
    template_hash: str = ""

    @classmethod
    def of(cls, pool: Mapping[str, Any]) -> PoolPolicy:
        spec = pool.get("spec") or {}
        disruption = spec.get("disruption") or {}
        tspec = (spec.get("template") or {}).get("spec") or {}
        after = disruption.get("consolidateAfter")
        expire = tspec.get("expireAfter")
        return cls(
            name=str((pool.get("metadata") or {}).get("name") or ""),
            consolidation_policy=str(
                disruption.get("consolidationPolicy") or WHEN_EMPTY_OR_UNDERUTILIZED
            ),
            consolidate_after=(
                0.0
                if after is None
                else parse_duration(
                    str(after), field="spec.disruption.consolidateAfter", never=True
                )
            ),
            expire_after=(
                DEFAULT_EXPIRE_AFTER
                if expire is None
                else parse_duration(str(expire), field="spec.template.spec.expireAfter", never=True)
            ),
            budgets=budgets_of(disruption.get("budgets")),
            template_hash=template_hash(pool),
        )

    @property
    def consolidates_underutilized(self) -> bool:
        return self.consolidation_policy == WHEN_EMPTY_OR_UNDERUTILIZED
