"""The requirements algebra: per label key, the set of values a node may carry.

Owns ``Requirement`` (one key) and ``Requirements`` (a conjunction over keys), built from the
node selector operators ``In``, ``NotIn``, ``Exists``, ``DoesNotExist``, ``Gt``, ``Lt`` (plus
``minValues``), their intersection, and compatibility checks that say *which key* failed.

Representation. A requirement on key ``k`` is the set of node states it admits. A state is either
"label absent" or "label present with value v". So a requirement is:

- ``absent``: whether a node without the label satisfies it (true for ``NotIn`` and
  ``DoesNotExist``, as in Kubernetes node affinity);
- a set of present values, either finite (``values``, ``complement=False``) or co-finite
  (every value except ``values``, ``complement=True``), further narrowed by optional integer
  bounds ``greater_than`` / ``less_than`` (a value then must parse as an integer, as Kubernetes
  parses it for ``Gt``/``Lt``).

Intersection is plain set intersection of those state sets, so it is commutative and
associative, and two requirements are compatible exactly when their intersection admits some
state. This module must stay pure: no Kubernetes JSON (see ``parsing``), no instance types.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from provisioner.errors import RequirementError
from provisioner.labels import normalize_key

__all__ = ["OPERATORS", "Requirement", "Requirements"]

OPERATORS = frozenset({"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"})
# Go's strconv.Atoi, which Kubernetes uses for Gt/Lt, accepts an optional sign and digits.
_INTEGER = re.compile(r"^[+-]?\d+$")


def _as_int(value: str) -> int | None:
    return int(value) if _INTEGER.match(value) else None


@dataclass(frozen=True, slots=True)
class Requirement:
    """The node states admitted for one label key. Build with ``Requirement.new``."""

    key: str
    complement: bool
    values: frozenset[str]
    absent: bool
    greater_than: int | None = None
    less_than: int | None = None
    min_values: int | None = None

    @staticmethod
    def new(
        key: str,
        operator: str,
        values: Iterable[str] = (),
        *,
        min_values: int | None = None,
        field: str = "requirement",
    ) -> Requirement:
        """Build from a node selector requirement, validating it as the API server would."""
        vals = list(values)
        key = normalize_key(key)
        if not key:
            raise RequirementError(f"{field}.key", "must not be empty")
        if operator not in OPERATORS:
            raise RequirementError(
                f"{field}.operator", f"{operator!r} is not one of {', '.join(sorted(OPERATORS))}"
            )
        if operator in ("In", "NotIn") and not vals:
            raise RequirementError(f"{field}.values", f"{operator} needs at least one value")
        if operator in ("Exists", "DoesNotExist") and vals:
            raise RequirementError(f"{field}.values", f"{operator} takes no values")
        bound: int | None = None
        if operator in ("Gt", "Lt") and (len(vals) != 1 or (bound := _as_int(vals[0])) is None):
            raise RequirementError(f"{field}.values", f"{operator} needs exactly one integer")
        if min_values is not None and (
            min_values < 1 or (operator == "In" and min_values > len(vals))
        ):
            raise RequirementError(
                f"{field}.minValues", f"{min_values} must be >= 1 and <= the number of values"
            )
        frozen = frozenset(vals)
        if operator == "In":
            return _make(key, False, frozen, False, None, None, min_values)
        if operator == "NotIn":
            return _make(key, True, frozen, True, None, None, min_values)
        if operator == "Exists":
            return _make(key, True, frozenset(), False, None, None, min_values)
        if operator == "DoesNotExist":
            return _make(key, False, frozenset(), True, None, None, min_values)
        if operator == "Gt":
            return _make(key, True, frozenset(), False, bound, None, min_values)
        return _make(key, True, frozenset(), False, None, bound, min_values)

    @staticmethod
    def any_of(key: str, values: Iterable[str]) -> Requirement:
        """``key In values`` without validation (values may be empty: nothing admitted)."""
        return _make(key, False, frozenset(values), False, None, None, None)

    @staticmethod
    def anything(key: str) -> Requirement:
        """Admits every state, absent included (what an unconstrained key means)."""
        return _make(key, True, frozenset(), True, None, None, None)

    @staticmethod
    def nothing_but_absent(key: str) -> Requirement:
        """``DoesNotExist``: what a node that does not define ``key`` offers."""
        return _make(key, False, frozenset(), True, None, None, None)

    def _in_bounds(self, number: int | None) -> bool:
        if number is None:
            return False
        if self.greater_than is not None and number <= self.greater_than:
            return False
        return self.less_than is None or number < self.less_than

    def has(self, value: str | None) -> bool:
        """Whether a node whose label is ``value`` (None: label absent) satisfies this."""
        if value is None:
            return self.absent
        if not self.complement:
            return value in self.values
        if value in self.values:
            return False
        if self.greater_than is None and self.less_than is None:
            return True
        return self._in_bounds(_as_int(value))

    def is_empty(self) -> bool:
        """Whether no node state at all satisfies this requirement."""
        return not self.complement and not self.values and not self.absent

    def single_value(self) -> str | None:
        """The one value admitted, when exactly one present value and no absence is admitted."""
        if not self.complement and not self.absent and len(self.values) == 1:
            return next(iter(self.values))
        return None

    def intersect(self, other: Requirement) -> Requirement:
        """The states admitted by both (keys are assumed equal)."""
        if self is other:
            return self
        absent = self.absent and other.absent
        min_values = _max_opt(self.min_values, other.min_values)
        if not self.complement and not other.complement:
            values = self.values & other.values
            return _make(self.key, False, values, absent, None, None, min_values)
        if not self.complement:
            return _make(
                self.key,
                False,
                frozenset(v for v in self.values if other.has(v)),
                absent,
                None,
                None,
                min_values,
            )
        if not other.complement:
            return other.intersect(self)
        gt = _max_opt(self.greater_than, other.greater_than)
        lt = _min_opt(self.less_than, other.less_than)
        return _make(self.key, True, self.values | other.values, absent, gt, lt, min_values)

    def intersects(self, other: Requirement) -> bool:
        return not self.intersect(other).is_empty()

    def __str__(self) -> str:
        bounds = []
        if self.greater_than is not None:
            bounds.append(f"Gt {self.greater_than}")
        if self.less_than is not None:
            bounds.append(f"Lt {self.less_than}")
        listed = ", ".join(sorted(self.values))
        if self.complement:
            parts = bounds or ([] if self.absent else ["Exists"])
            if self.values:
                parts.append(f"NotIn [{listed}]")
            return " and ".join(parts) or "any value or absent"
        if not self.values:
            return "DoesNotExist" if self.absent else "no value"
        text = f"In [{listed}]"
        return f"{text} or absent" if self.absent else text


def _max_opt(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def _min_opt(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _make(
    key: str,
    complement: bool,
    values: frozenset[str],
    absent: bool,
    gt: int | None,
    lt: int | None,
    min_values: int | None,
) -> Requirement:
    """Build the canonical form, so equal state sets compare equal."""
    if complement and gt is not None and lt is not None and lt - gt <= 1:
        complement, values, gt, lt = False, frozenset(), None, None  # no integer in range
    if complement and (gt is not None or lt is not None):
        probe = Requirement(key, True, frozenset(), absent, gt, lt)
        values = frozenset(v for v in values if probe._in_bounds(_as_int(v)))
    return Requirement(key, complement, values, absent, gt, lt, min_values)


class Requirements(Mapping[str, Requirement]):
    """An immutable conjunction of requirements, at most one per key (same-key ones intersect).

    Hashable and comparable, so the simulation can cache work per distinct requirement set.
    """

    __slots__ = ("_by_key", "_hash")

    def __init__(self, requirements: Iterable[Requirement] = ()) -> None:
        by_key: dict[str, Requirement] = {}
        for req in requirements:
            existing = by_key.get(req.key)
            by_key[req.key] = req if existing is None else existing.intersect(req)
        self._by_key = by_key
        self._hash = hash(frozenset(by_key.values()))

    @staticmethod
    def from_labels(labels: Mapping[str, str]) -> Requirements:
        """``key In [value]`` for every label."""
        return Requirements(Requirement.any_of(normalize_key(k), (v,)) for k, v in labels.items())

    def find(self, key: str) -> Requirement | None:
        """The requirement on ``key`` or None (a faster ``get`` for hot loops)."""
        return self._by_key.get(key)

    def __getitem__(self, key: str) -> Requirement:
        return self._by_key[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_key)

    def __len__(self) -> int:
        return len(self._by_key)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Requirements):
            return NotImplemented
        return self._hash == other._hash and self._by_key == other._by_key

    def __repr__(self) -> str:
        return f"Requirements({'; '.join(f'{k} {v}' for k, v in sorted(self._by_key.items()))})"

    def add(self, *requirements: Requirement) -> Requirements:
        return Requirements([*self._by_key.values(), *requirements])

    def intersect(self, other: Requirements) -> Requirements:
        """Every key of both, same-key requirements intersected."""
        if not other or self == other:
            return self
        if not self:
            return other
        return Requirements([*self._by_key.values(), *other._by_key.values()])

    def conflict(self, other: Requirements) -> str | None:
        """Why the shared keys do not intersect (keys only one side has are ignored), or None."""
        small, large = (self, other) if len(self) <= len(other) else (other, self)
        for key, req in small._by_key.items():
            theirs = large._by_key.get(key)
            if theirs is not None and not req.intersects(theirs):
                mine, other_req = (req, theirs) if small is self else (theirs, req)
                return f"{key}: {other_req} does not intersect {mine}"
        return None

    def admit(self, incoming: Requirements, *, undefined_ok: frozenset[str]) -> str | None:
        """Whether ``incoming`` (a pod's) can be met by ``self`` (a NodePool's or NodeClaim's).

        Shared keys must intersect. A key only ``incoming`` has is satisfied when it admits an
        absent label (``NotIn``, ``DoesNotExist``) or when it is in ``undefined_ok`` (well-known
        labels an instance type will define); otherwise no node from ``self`` can carry it.
        Returns a reason naming the key, or None when compatible.
        """
        for key, wanted in incoming._by_key.items():
            offered = self._by_key.get(key)
            if offered is None:
                if wanted.absent or key in undefined_ok:
                    continue
                return f"{key}: {wanted} but the label is not defined here"
            if not wanted.intersects(offered):
                return f"{key}: {wanted} does not intersect {offered}"
        return None

    def match_labels(self, labels: Mapping[str, str]) -> str | None:
        """Why a concrete node with ``labels`` fails these requirements, or None when it passes."""
        for key, req in self._by_key.items():
            value = labels.get(key)
            if not req.has(value):
                shown = "absent" if value is None else repr(value)
                return f"{key}: {req} but the node has {shown}"
        return None

    def single_values(self) -> dict[str, str]:
        """Keys pinned to exactly one value: the labels a node built from these will carry."""
        out = {}
        for key, req in self._by_key.items():
            value = req.single_value()
            if value is not None:
                out[key] = value
        return out
