"""The queue: the order pods are tried in, and what is still waiting.

Owns ``order`` (the deterministic queue order), ``Item`` (a pod with its requests unpacked for
the hot loops, and its sizes bucketed for the ranking cache) and ``Backlog`` (what is left to
place). It must not place anything: the scheduler takes items from here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from provisioner.model import Pod
from provisioner.resources import Resources

__all__ = ["NO_CAP", "TAIL", "Backlog", "Item", "order"]

RATIO_STEP = math.log(1.05)
"""Demand buckets 5 % wide: target rankings are cached per bucket, and a type's price per pod
barely moves within 5 % of a pod's size."""
TAIL = 64
"""Pods left in the queue below which the target ranking caps a type's pod count at what is
still queued (a type bigger than the rest of the batch pays for its empty room)."""
NO_CAP = 1 << 30
"""The pods-left cap above ``TAIL``: larger than any type's pod count, so it never binds and
the ranking cache is not split by a count that changes with every pod."""


def order(pending: Sequence[Pod]) -> list[Pod]:
    """CPU request desc, memory desc, creation time, UID, namespace/name: biggest first, and
    the same order whatever order the pods came in."""
    return sorted(
        pending,
        key=lambda p: (-p.requests.cpu, -p.requests.memory, p.created, p.uid, p.key),
    )


def bucket(amount: int) -> float:
    return math.exp(math.ceil(math.log(max(amount, 1)) / RATIO_STEP) * RATIO_STEP)


class Item:
    __slots__ = ("cpu", "cpu_rep", "eph", "ext", "mem", "mem_rep", "pod", "requests")

    def __init__(self, pod: Pod) -> None:
        self.pod = pod
        r = pod.requests
        self.cpu, self.mem, self.eph = r.cpu, r.memory, r.ephemeral_storage
        self.ext = dict(r.extended)
        self.requests = r + Resources(pods=1)
        # Sizes rounded up to 5 % buckets, so target rankings can be cached per bucket.
        self.cpu_rep = bucket(self.cpu)
        self.mem_rep = bucket(self.mem)


class Backlog:
    """The queued items and how many are still unplaced."""

    __slots__ = ("items", "left", "min_cpu", "min_mem", "queue")

    def __init__(self, pending: Sequence[Pod]) -> None:
        self.queue = order(pending)
        self.items = [Item(p) for p in self.queue]
        self.min_cpu = min((i.cpu for i in self.items), default=0)
        """The smallest request queued: a node with less room left than this is closed."""
        self.min_mem = min((i.mem for i in self.items), default=0)
        self.left = len(self.items)

    def sizes(self, item: Item) -> tuple[float, float, int]:
        """The bucketed (cpu, memory, pods-left cap) the target scores use for ``item``.

        The cap on pods left only matters near the end of the queue; above ``TAIL`` pods it
        is lifted, so the ranking cache is not split by a count that changes with every pod.
        """
        left = self.left
        return item.cpu_rep, item.mem_rep, max(left, 1) if left <= TAIL else NO_CAP
