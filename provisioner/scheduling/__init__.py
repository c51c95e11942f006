"""The scheduling simulation: pending pods + cluster state + pools in, a plan out.

Provisioning (new NodeClaims for pending pods) and disruption (can these nodes go?) both call
this one package through ``simulate``; neither keeps a simulation of its own. It is pure: no
clock, no I/O, no Kubernetes client.

The API
-------

``simulate(pods, *, nodepools, catalog, nodes=(), daemonsets=(), one_claim=False)``, a
``SimulationResult``:

- ``pods``: the pods to place (pending ones, or ones a disruption candidate would displace);
- ``nodes``: the cluster as it is, one ``NodeView`` per existing node and in-flight NodeClaim,
  with the pods bound or nominated to it (they count for room, host ports, topology and the
  pools' limits);
- ``daemonsets``: daemonset pod templates (their requests are overhead on every new node they
  would land on);
- ``nodepools`` and ``catalog``: what new claims may be made of;
- ``one_claim``: the caller can launch one new claim only (a consolidation's replacement):
  when the pass ends with several claims of one pool holding only free pods, they become one
  claim of the cheapest type that holds them all, if a type does (``repack.into_one``).

``SimulationResult`` says which pods go on which existing node (``placed``), the new claims
(``new_claims``, each a ``NodeClaimPlan`` with every type that could host it, cheapest first)
and which pods cannot be scheduled, with a reason naming the constraint (``unschedulable``).

A disruption caller asks "if these nodes were removed, where do their pods go and what new
claims would be needed" by passing the *reduced* cluster: ``nodes`` without the candidates, and
the candidates' reschedulable pods (not their daemonset pods) as ``pods``. The removed nodes
then count for nothing: no room, no topology domain, and no capacity against their pool's
limits. The candidates can go if ``unschedulable`` is empty; ``new_claims`` is what replacing
them would launch, at ``price``.

How a pass works (``scheduler``)

1. Queue (``queue``): CPU request desc, memory desc, creation time, UID, namespace/name
   (deterministic).
2. Each pod is tried, per relaxation level (below) and per required nodeSelectorTerm (OR), on:
   a. existing and in-flight nodes (initialized first, then by name), first fit;
   b. NodeClaims opened earlier in this pass: among the first few with room per target type,
      the one left fullest and most balanced after placing the pod (Karpenter tries the
      emptiest first, which spreads rather than packs). Only claims whose target costs at
      most 10 % more per pod of this size than the best target for it qualify ("picky");
   c. before a new claim: a claim of this pass (up to ``CHEAP_VISITS``, newest of each target
      type first) the pod can join, or grow into a bigger target for (not with minValues;
      under limits while the bigger target fits what they leave), for no more than the
      cheapest node holding the pod alone would cost, least added cost first. A claim
      launches as the cheapest type holding what it got, so what a pod costs there is the
      step to the cheapest type holding it too: often nothing, even when (b) found the
      claim's target too dear for pods of this size;
   d. a new NodeClaim from each NodePool in weight order (desc, then name), first success;
   e. if no pool can take it (limits, affinity to a pod already placed), any claim of (b)
      with room, picky or not.
   Filling (a) to (c) first is what keeps a burst from launching twice.
3. Pods that failed are retried in further passes while a pass makes progress (a pod may
   need an affinity target that is placed later in the queue).

Relaxation (``preferences``; fixed order, one step per level, until the pod fits or nothing is
left): at level 0 every preferred pod (anti-)affinity term and ScheduleAnyway spread
constraint is treated as required, the heaviest preferred node-affinity term is required, and
PreferNoSchedule taints must be tolerated. Then, one at a time: drop the lightest preferred
pod-affinity term; the lightest preferred anti-affinity term; the heaviest preferred
node-affinity term (the next heaviest becomes required); a ScheduleAnyway spread constraint;
finally tolerate PreferNoSchedule taints (only when some pool or node has one).

Packing (``pools``, ``offerings``, ``claims``): a new NodeClaim is packed against one *target*
instance type, chosen for the pod that opens it as the type with the lowest price per pod of
that pod's size (price over how many such pods fit, at most the number still queued), among
types that fit the pod plus daemonset overhead, have an available offering the requirements
admit, and stay inside the pool's limits. Types that another type beats on price and every
resource are never targets. After the pass each claim's options shrink to every compatible type
that fits what was packed, sorted by cheapest compatible available offering; the launch takes
the first, the provider falls back along the list.

Repacking (``repack``, ``packing``; cost): when the pass is done, a pool's claims that hold only
*free* pods (no node requirements, host ports, tolerated PreferNoSchedule, topology or affinity
terms of their own, and matched by no topology group: moving them changes nothing but cost)
are packed again node by node (value each pod by per-unit prices of cpu and memory, open a
node for the largest pod left, try the types cheapest per unit of value they could absorb,
fill each largest-first then smallest-first, shrink it to the cheapest type that holds what it
got, keep the cheapest per unit of value packed). The new claims replace the old ones only if
they cost less in total, and, under a pool's limits, only if they fit what the limits leave
once the old claims' reservations are given back. Skipped for pools with minValues (the
pod-by-pod pass is what checks those) and when its work estimate (claims x types tried x pods
scanned per node) is over a budget, as for 20k pods on burstable types holding one or two
pods each (seconds of work for ~0.1 % measured). Claims mixing free and constrained pods
keep their packing. Then (``repack.coalesce``) two such claims become one whenever the cheapest
type holding both costs no more than the two: at equal $/h fewer, larger nodes (one
daemonset overhead, one node to drain; 5 x 1 cpu on c/m/r is one c5.2xlarge, not two
c5.large and a c5.xlarge), and under limits only when the merged node fits what the two
reservations leave.

Zones: a claim whose pods leave it several zones is pinned, at the end of the pass, to the
zone where its pool has the fewest nodes (existing ones and this pass's claims) among those
where its cheapest option costs the least: at equal price the claims spread over the pool's
zones instead of all landing in the first.

Limits are never exceeded: opening a claim reserves its target's capacity (the largest option
the claim can end with, since options never exceed the target) from the pool's remaining
limits, which start from the limits minus the capacity of the pool's nodes and in-flight claims.

minValues: a claim only accepts a pod if the types that would still fit it keep at least
minValues distinct values for each such requirement (the Strict policy).

Topology (zone and hostname keys): see ``topology``. A claim whose pods carry a zone constraint
is pinned to one zone (the least-loaded allowed one for spread, else the first by name).
Hostname spread treats a new node's count as 0, so a new claim can always take one more pod.

Modules: ``scheduler`` (the loop), ``queue``, ``preferences``, ``topology``, ``pools``,
``offerings``, ``bins`` / ``existing`` / ``claims`` (the two kinds of node a pod can go on),
``shapes``, ``repack`` / ``packing``, ``results``. Only the names below are the package's surface.
"""

from provisioner.scheduling.results import NodeClaimPlan, SimulationResult
from provisioner.scheduling.scheduler import simulate

__all__ = ["NodeClaimPlan", "SimulationResult", "simulate"]
