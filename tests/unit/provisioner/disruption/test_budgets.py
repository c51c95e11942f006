"""Disruption budgets: percent rounding, schedule windows, reasons, nodes already disrupting."""

from __future__ import annotations

from datetime import UTC, datetime

from provisioner.disruption.budgets import Budget, allowed, budgets_of

NOON = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_a_percent_rounds_up() -> None:
    assert Budget(nodes="10%").limit(11) == 2
    assert Budget(nodes="10%").limit(10) == 1
    assert Budget(nodes="10%").limit(1) == 1
    assert Budget(nodes="0%").limit(50) == 0


def test_the_smallest_active_budget_wins_less_those_disrupting() -> None:
    budgets = budgets_of([{"nodes": "50%"}, {"nodes": "3"}])
    assert allowed(budgets, reason="Empty", total=10, disrupting=0, now=NOON) == 3
    assert allowed(budgets, reason="Empty", total=10, disrupting=2, now=NOON) == 1
    assert allowed(budgets, reason="Empty", total=10, disrupting=5, now=NOON) == 0


def test_no_budgets_means_ten_percent() -> None:
    assert allowed(budgets_of(None), reason="Drifted", total=30, disrupting=0, now=NOON) == 3


def test_a_scheduled_budget_applies_only_inside_its_window() -> None:
    budgets = budgets_of(
        [{"nodes": "0", "schedule": "0 9 * * *", "duration": "8h"}, {"nodes": "100%"}]
    )
    assert allowed(budgets, reason="Empty", total=4, disrupting=0, now=NOON) == 0
    evening = datetime(2026, 6, 1, 18, 0, tzinfo=UTC)
    assert allowed(budgets, reason="Empty", total=4, disrupting=0, now=evening) == 4


def test_a_budget_covers_only_its_reasons() -> None:
    budgets = budgets_of([{"nodes": "0", "reasons": ["Underutilized"]}, {"nodes": "2"}])
    assert allowed(budgets, reason="Underutilized", total=9, disrupting=0, now=NOON) == 0
    assert allowed(budgets, reason="Empty", total=9, disrupting=0, now=NOON) == 2
