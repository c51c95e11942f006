"""Every provisioner metric is on the registry `updraft provisioner` serves, and only there."""

from __future__ import annotations

from prometheus_client import REGISTRY as DEFAULT
from prometheus_client import generate_latest

from provisioner.controllers import METRICS_REGISTRY, metrics

NAMES = [n for n in metrics.__all__ if n != "REGISTRY"]


def test_every_provisioner_metric_is_served_by_the_provisioner_registry() -> None:
    served = generate_latest(METRICS_REGISTRY).decode()
    for attr in NAMES:
        (family,) = getattr(metrics, attr).describe()
        name = family.name
        assert f"# TYPE {name}" in served, f"{attr} ({name}) is not on the provisioner registry"


def test_the_disruption_metrics_are_exported_by_their_documented_names() -> None:
    metrics.DISRUPTION_COMMANDS.labels("emptiness", "executed")
    metrics.NODES_DISRUPTED.labels("default", "Empty")
    served = generate_latest(METRICS_REGISTRY).decode()
    for line in (
        "# TYPE updraft_provisioner_disruption_commands_total counter",
        "# TYPE updraft_provisioner_nodes_disrupted_total counter",
        "# TYPE updraft_provisioner_disruption_savings_per_hour gauge",
    ):
        assert line in served
    # Not on the process-wide default registry: `updraft serve` exports none of them.
    assert "updraft_provisioner_" not in generate_latest(DEFAULT).decode()
