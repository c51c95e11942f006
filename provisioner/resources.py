"""Resource vectors: CPU in millicores, memory and ephemeral storage in bytes, pods, extended.

Owns ``Resources``, an immutable vector with exact integer arithmetic, and its parsing from a
Kubernetes ResourceList. Extended resources (``nvidia.com/gpu``, ``hugepages-2Mi``...) are kept
as sorted ``(name, amount)`` pairs so the value stays hashable. This module knows units, not
scheduling: it does not decide what fits where beyond comparing two vectors.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from provisioner.quantity import format_cpu, format_quantity, to_millis, to_units

__all__ = ["CPU", "EPHEMERAL_STORAGE", "MEMORY", "PODS", "Resources"]

CPU = "cpu"
MEMORY = "memory"
PODS = "pods"
EPHEMERAL_STORAGE = "ephemeral-storage"
_BASIC = (CPU, MEMORY, PODS, EPHEMERAL_STORAGE)


@dataclass(frozen=True, slots=True)
class Resources:
    """An immutable resource vector; absent resources are zero."""

    cpu: int = 0
    """Millicores."""
    memory: int = 0
    """Bytes."""
    pods: int = 0
    ephemeral_storage: int = 0
    """Bytes."""
    extended: tuple[tuple[str, int], ...] = ()
    """Sorted ``(name, amount)`` pairs with non-zero amounts, e.g. ``(("nvidia.com/gpu", 1),)``."""

    @classmethod
    def of(cls, amounts: Mapping[str, int]) -> Resources:
        """Build from ``{"cpu": millis, "memory": bytes, ...}`` (already in base units)."""
        extended = tuple(sorted((k, v) for k, v in amounts.items() if k not in _BASIC and v))
        return cls(
            cpu=amounts.get(CPU, 0),
            memory=amounts.get(MEMORY, 0),
            pods=amounts.get(PODS, 0),
            ephemeral_storage=amounts.get(EPHEMERAL_STORAGE, 0),
            extended=extended,
        )

    @classmethod
    def parse(cls, resource_list: Mapping[str, object], *, field: str) -> Resources:
        """Parse a Kubernetes ResourceList (``{"cpu": "100m", "memory": "4Gi"}``)."""
        amounts: dict[str, int] = {}
        for name, raw in resource_list.items():
            path = f"{field}.{name}"
            amounts[name] = to_millis(raw, field=path) if name == CPU else to_units(raw, field=path)
        return cls.of(amounts)

    def get(self, name: str) -> int:
        """The amount of one resource by its Kubernetes name (0 when absent)."""
        if name == CPU:
            return self.cpu
        if name == MEMORY:
            return self.memory
        if name == PODS:
            return self.pods
        if name == EPHEMERAL_STORAGE:
            return self.ephemeral_storage
        for key, amount in self.extended:
            if key == name:
                return amount
        return 0

    def items(self) -> Iterator[tuple[str, int]]:
        """Non-zero ``(name, amount)`` pairs, basic resources first."""
        for name, amount in zip(
            _BASIC, (self.cpu, self.memory, self.pods, self.ephemeral_storage), strict=True
        ):
            if amount:
                yield name, amount
        yield from self.extended

    def as_dict(self) -> dict[str, int]:
        return dict(self.items())

    def names(self) -> set[str]:
        return {name for name, _ in self.items()}

    def _combine(self, other: Resources, sign: int) -> Resources:
        if not self.extended and not other.extended:
            # the common case (cpu, memory, pods only): no merge and sort of extended names
            return Resources(
                cpu=self.cpu + sign * other.cpu,
                memory=self.memory + sign * other.memory,
                pods=self.pods + sign * other.pods,
                ephemeral_storage=self.ephemeral_storage + sign * other.ephemeral_storage,
            )
        merged = dict(self.extended)
        for key, amount in other.extended:
            merged[key] = merged.get(key, 0) + sign * amount
        return Resources(
            cpu=self.cpu + sign * other.cpu,
            memory=self.memory + sign * other.memory,
            pods=self.pods + sign * other.pods,
            ephemeral_storage=self.ephemeral_storage + sign * other.ephemeral_storage,
            extended=tuple(sorted((k, v) for k, v in merged.items() if v)),
        )

    def __add__(self, other: Resources) -> Resources:
        return self._combine(other, 1)

    def __sub__(self, other: Resources) -> Resources:
        """Difference; may go negative (callers check ``fits`` first or clamp)."""
        return self._combine(other, -1)

    def max(self, other: Resources) -> Resources:
        """Per-resource maximum."""
        names = self.names() | other.names()
        return Resources.of({n: max(self.get(n), other.get(n)) for n in names})

    def clamp(self) -> Resources:
        """Negative amounts raised to zero."""
        return Resources.of({n: max(a, 0) for n, a in self.items()})

    def exceeding(self, capacity: Resources) -> str | None:
        """The first resource of ``self`` larger than in ``capacity``, or None if it fits."""
        for name, amount in self.items():
            if amount > capacity.get(name):
                return name
        return None

    def fits(self, capacity: Resources) -> bool:
        """Whether every resource of ``self`` is at most the same resource of ``capacity``."""
        return self.exceeding(capacity) is None

    def __str__(self) -> str:
        parts = []
        for name, amount in self.items():
            if name == CPU:
                parts.append(f"cpu={format_cpu(amount)}")
            elif name in (MEMORY, EPHEMERAL_STORAGE) or name.startswith("hugepages-"):
                parts.append(f"{name}={format_quantity(amount)}")
            else:
                parts.append(f"{name}={amount}")
        return ",".join(parts) or "none"
