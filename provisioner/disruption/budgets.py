"""Disruption budgets: how many of a pool's nodes may be disrupted at once, per reason.

Owns ``Budget`` (``nodes`` as a count or a percent, an optional cron ``schedule`` in UTC with
a ``duration``, the ``reasons`` it applies to) and ``allowed``: the minimum over the budgets
active now that cover the reason, of the count (a percent of the pool's nodes, rounded up),
less the nodes already disrupting, floored at 0. No budget covering the reason means no limit
from budgets; a pool without budgets has one of 10 %. Pure: time comes in as an argument.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from croniter import croniter

from kits import parse_duration

__all__ = ["DRIFTED", "EMPTY", "REASONS", "UNDERUTILIZED", "Budget", "allowed", "budgets_of"]

EMPTY = "Empty"
DRIFTED = "Drifted"
UNDERUTILIZED = "Underutilized"
REASONS = (EMPTY, DRIFTED, UNDERUTILIZED)
UNLIMITED = 1 << 31


@dataclass(frozen=True)
class Budget:
    nodes: str
    """"3" or "10%"."""
    schedule: str | None = None
    duration: float | None = None
    """Seconds the budget stays active after each ``schedule`` hit."""
    reasons: frozenset[str] = frozenset(REASONS)

    def limit(self, total: int) -> int:
        """Nodes this budget lets go at once out of ``total`` (a percent rounded up)."""
        if self.nodes.endswith("%"):
            return math.ceil(total * int(self.nodes[:-1]) / 100)
        return int(self.nodes)

    def active(self, now: datetime) -> bool:
        """Always without a schedule; else within ``duration`` after a hit (now included)."""
        if self.schedule is None or self.duration is None:
            return True
        start = now - timedelta(seconds=self.duration)
        hit: datetime = croniter(self.schedule, start).get_next(datetime)
        return hit <= now


def budgets_of(raw: Sequence[Any] | None) -> tuple[Budget, ...]:
    """The budgets of ``spec.disruption.budgets`` (validated already); default one of 10 %."""
    if not raw:
        return (Budget(nodes="10%"),)
    out = []
    for item in raw:
        duration = item.get("duration")
        reasons = item.get("reasons")
        out.append(
            Budget(
                nodes=str(item.get("nodes", "10%")),
                schedule=str(item["schedule"]) if item.get("schedule") else None,
                duration=parse_duration(str(duration)) if duration else None,
                reasons=frozenset(str(r) for r in reasons) if reasons else frozenset(REASONS),
            )
        )
    return tuple(out)


def allowed(
    budgets: Sequence[Budget], *, reason: str, total: int, disrupting: int, now: datetime
) -> int:
    """How many more nodes of a pool of ``total`` may be disrupted for ``reason`` now."""
    limits = [b.limit(total) for b in budgets if reason in b.reasons and b.active(now)]
    if not limits:
        return UNLIMITED
    return max(0, min(limits) - disrupting)
