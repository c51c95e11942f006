"""The relaxation ladder: what must hold for a pod at each level of relaxing its preferences.

Owns ``Attempt`` (one level of one pod with one required nodeSelectorTerm), ``ladder`` (the
fixed order preferences are dropped in) and ``blocking`` (taints under an attempt's
tolerations). It must not look at nodes, claims or topology counts: it only says what to ask.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from provisioner.model import (
    PREFER_NO_SCHEDULE,
    AffinityTerm,
    HostPort,
    Pod,
    SpreadConstraint,
    Taint,
    Toleration,
    untolerated,
)
from provisioner.requirements import Requirements

__all__ = ["Attempt", "blocking", "ladder"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One relaxation level of one pod with one required nodeSelectorTerm: what must hold."""

    requirements: Requirements
    tolerations: tuple[Toleration, ...]
    tolerate_prefer: bool
    affinity: tuple[AffinityTerm, ...]
    anti_affinity: tuple[AffinityTerm, ...]
    spread: tuple[SpreadConstraint, ...]
    host_ports: tuple[HostPort, ...]


def ladder(pod: Pod, prefer_taints: bool) -> Iterator[Attempt]:
    """Every level, strictest first; each required nodeSelectorTerm (OR) once per level."""
    pref_aff = list(pod.preferred_affinity)
    pref_anti = list(pod.preferred_anti_affinity)
    pref_node = [reqs for _, reqs in pod.preferred_terms]
    hard = [s for s in pod.spread if s.required]
    soft = [s for s in pod.spread if not s.required]
    tolerate = False
    while True:
        for term in pod.required_terms:
            yield Attempt(
                requirements=term.intersect(pref_node[0]) if pref_node else term,
                tolerations=pod.tolerations,
                tolerate_prefer=tolerate,
                affinity=(*pod.affinity, *pref_aff),
                anti_affinity=(*pod.anti_affinity, *pref_anti),
                spread=(*hard, *soft),
                host_ports=pod.host_ports,
            )
        if pref_aff:
            pref_aff.pop(0)
        elif pref_anti:
            pref_anti.pop(0)
        elif pref_node:
            pref_node.pop(0)
        elif soft:
            soft.pop(0)
        elif prefer_taints and not tolerate:
            tolerate = True
        else:
            return


def blocking(taints: Iterable[Taint], attempt: Attempt) -> Taint | None:
    """The first taint the attempt does not tolerate (PreferNoSchedule counts until the last
    level tolerates it)."""
    relevant = tuple(
        t for t in taints if not (attempt.tolerate_prefer and t.effect == PREFER_NO_SCHEDULE)
    )
    return untolerated(relevant, attempt.tolerations)
