"""The scheduling simulation: pending pods + cluster state + pools in, a plan out.

Provisioning (new NodeClaims for pending pods) and disruption (can these nodes go?) both call
this one package; neither keeps a simulation of its own. It is pure: no clock, no I/O, no
Kubernetes client.
"""

from provisioner.scheduling.simulate import NodeClaimPlan, SimulationResult, simulate

__all__ = ["NodeClaimPlan", "SimulationResult", "simulate"]
