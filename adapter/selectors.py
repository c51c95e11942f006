"""Kubernetes label selectors: parsing, matching, and rendering as PromQL matchers.

Owns the selector grammar the HPA sends in `labelSelector` / `metricLabelSelector`
(`a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x,y)`, `a`, `!a`, comma-separated, whitespace
between tokens), the label key/value validation rules, and two renderings: PromQL label matchers
(for `<<.LabelMatchers>>` substitution later) and `metav1.LabelSelector` JSON (echoed in custom
metric responses). It must not know about metrics, providers or HTTP.

Not supported: the `>` / `<` operators of node-affinity selectors. They are never in what the HPA
sends (it renders a `metav1.LabelSelector`, which has no such operators) and have no PromQL
label-matcher form, so they are rejected with a `SelectorError` like any other bad token.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from adapter.errors import SelectorError

__all__ = ["Operator", "Requirement", "Selector", "parse_selector"]


class Operator(enum.StrEnum):
    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"


_NAME = re.compile(r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")
_PROMQL_LEGACY_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_RE2_SPECIAL = frozenset("\\.+*?()|[]{}^$")

_EXPECTED_KEY = (
    "a label key ([<DNS subdomain prefix>/]<name>, the name at most 63 characters of "
    "[A-Za-z0-9-_.] beginning and ending with an alphanumeric)"
)
_EXPECTED_VALUE = (
    "a label value (empty, or at most 63 characters of [A-Za-z0-9-_.] beginning and ending "
    "with an alphanumeric)"
)
_EXPECTED_OPERATOR = "one of '=', '==', '!=', 'in', 'notin', ',' or end of input"


def valid_key(key: str) -> bool:
    """Whether `key` is a qualified label key such as `app` or `app.kubernetes.io/name`."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return False
    return len(name) <= 63 and _NAME.fullmatch(name) is not None


def valid_value(value: str) -> bool:
    """Whether `value` may be a label value (empty is allowed)."""
    return value == "" or (len(value) <= 63 and _NAME.fullmatch(value) is not None)


@dataclass(frozen=True)
class Requirement:
    """One comma-separated term. `values` is empty for the existence operators, one element for
    `=` / `!=`, and sorted and de-duplicated for `in` / `notin`."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        match self.operator:
            case Operator.EXISTS:
                return present
            case Operator.DOES_NOT_EXIST:
                return not present
            case Operator.EQUALS | Operator.IN:
                return present and labels[self.key] in self.values
            case Operator.NOT_EQUALS | Operator.NOT_IN:
                return not present or labels[self.key] not in self.values

    def __str__(self) -> str:
        match self.operator:
            case Operator.EXISTS:
                return self.key
            case Operator.DOES_NOT_EXIST:
                return f"!{self.key}"
            case Operator.EQUALS | Operator.NOT_EQUALS:
                return f"{self.key}{self.operator.value}{self.values[0]}"
            case Operator.IN | Operator.NOT_IN:
                return f"{self.key} {self.operator.value} ({','.join(self.values)})"

    def to_promql(self, label: str) -> str:
        match self.operator:
            case Operator.EXISTS:
                return f'{label}!=""'
            case Operator.DOES_NOT_EXIST:
                return f'{label}=""'
            case Operator.EQUALS | Operator.NOT_EQUALS:
                return f"{label}{self.operator.value}{_promql_string(self.values[0])}"
            case Operator.IN | Operator.NOT_IN:
                pattern = "|".join(_re2_escape(v) for v in self.values)
                op = "=~" if self.operator is Operator.IN else "!~"
                return f"{label}{op}{_promql_string(pattern)}"

    def to_expression(self) -> dict[str, Any]:
        """This requirement as a `metav1.LabelSelectorRequirement` (for a non-`=` operator)."""
        operator = {
            Operator.NOT_EQUALS: "NotIn",
            Operator.IN: "In",
            Operator.NOT_IN: "NotIn",
            Operator.EXISTS: "Exists",
            Operator.DOES_NOT_EXIST: "DoesNotExist",
        }[self.operator]
        expression: dict[str, Any] = {"key": self.key, "operator": operator}
        if self.values:
            expression["values"] = list(self.values)
        return expression


def _promql_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _re2_escape(text: str) -> str:
    return "".join("\\" + ch if ch in _RE2_SPECIAL else ch for ch in text)


def promql_label_name(key: str) -> str:
    """A Kubernetes label key as a PromQL label name: as-is when it is a classic Prometheus
    name, otherwise quoted (Prometheus 3's UTF-8 name syntax, `{"app.kubernetes.io/name"="x"}`)."""
    if _PROMQL_LEGACY_NAME.fullmatch(key):
        return key
    return _promql_string(key)


@dataclass(frozen=True)
class Selector:
    """A parsed selector; the empty selector (no requirements) matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def to_promql(self, *, label_name: Callable[[str], str] = promql_label_name) -> str:
        """Comma-separated PromQL label matchers (no braces), e.g. `app="web",tier=~"a|b"`.

        `label_name` maps a Kubernetes key to the Prometheus label to match (a rule may rename
        `app.kubernetes.io/name` to `label_app_kubernetes_io_name`, as kube-state-metrics does).
        """
        return ",".join(r.to_promql(label_name(r.key)) for r in self.requirements)

    def to_label_selector(self) -> dict[str, Any] | None:
        """This selector as `metav1.LabelSelector` JSON, or None when it is empty."""
        if not self.requirements:
            return None
        match_labels = {
            r.key: r.values[0] for r in self.requirements if r.operator is Operator.EQUALS
        }
        expressions = [
            r.to_expression() for r in self.requirements if r.operator is not Operator.EQUALS
        ]
        result: dict[str, Any] = {}
        if match_labels:
            result["matchLabels"] = match_labels
        if expressions:
            result["matchExpressions"] = expressions
        return result


EVERYTHING = Selector()


# --- parsing ---------------------------------------------------------------------------------

_SPECIAL = "!=,()<>"


@dataclass(frozen=True)
class _Token:
    kind: str
    """`ident`, one of the operator spellings (`!`, `!=`, `=`, `==`, `,`, `(`, `)`, `<`, `>`),
    or `end`."""
    text: str
    position: int


def _tokens(text: str) -> Iterator[_Token]:
    i = 0
    n = len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            yield _Token("end", "", n)
            return
        ch = text[i]
        if ch in _SPECIAL:
            two = text[i : i + 2]
            if two in ("!=", "=="):
                yield _Token(two, two, i)
                i += 2
            else:
                yield _Token(ch, ch, i)
                i += 1
            continue
        start = i
        while i < n and not text[i].isspace() and text[i] not in _SPECIAL:
            i += 1
        yield _Token("ident", text[start:i], start)


class _Parser:
    def __init__(self, text: str) -> None:
        self._text = text
        self._tokens = list(_tokens(text))
        self._index = 0

    def _peek(self) -> _Token:
        return self._tokens[self._index]

    def _next(self) -> _Token:
        token = self._tokens[self._index]
        if token.kind != "end":
            self._index += 1
        return token

    def _fail(self, token: _Token, expected: str) -> SelectorError:
        return SelectorError(
            selector=self._text, token=token.text, position=token.position, expected=expected
        )

    def parse(self) -> Selector:
        if self._peek().kind == "end":
            return EVERYTHING
        requirements = [self._requirement()]
        while True:
            token = self._next()
            if token.kind == "end":
                return Selector(tuple(requirements))
            if token.kind != ",":
                raise self._fail(token, "',' or end of input")
            requirements.append(self._requirement())

    def _key(self) -> str:
        token = self._next()
        if token.kind != "ident":
            raise self._fail(token, _EXPECTED_KEY)
        if not valid_key(token.text):
            raise self._fail(token, _EXPECTED_KEY)
        return token.text

    def _value(self) -> str:
        token = self._peek()
        if token.kind in ("end", ",", ")"):
            return ""  # `a=` selects the empty value, as Kubernetes allows
        token = self._next()
        if token.kind != "ident" or not valid_value(token.text):
            raise self._fail(token, _EXPECTED_VALUE)
        return token.text

    def _requirement(self) -> Requirement:
        if self._peek().kind == "!":
            self._next()
            return Requirement(self._key(), Operator.DOES_NOT_EXIST)
        key = self._key()
        token = self._peek()
        if token.kind in ("end", ","):
            return Requirement(key, Operator.EXISTS)
        token = self._next()
        if token.kind in ("=", "=="):
            return Requirement(key, Operator.EQUALS, (self._value(),))
        if token.kind == "!=":
            return Requirement(key, Operator.NOT_EQUALS, (self._value(),))
        if token.kind == "ident" and token.text in ("in", "notin"):
            operator = Operator.IN if token.text == "in" else Operator.NOT_IN
            return Requirement(key, operator, self._set())
        raise self._fail(token, _EXPECTED_OPERATOR)

    def _set(self) -> tuple[str, ...]:
        token = self._next()
        if token.kind != "(":
            raise self._fail(token, "'(' opening a set of values")
        if self._peek().kind == ")":
            raise self._fail(self._peek(), "at least one value in the set")
        values = {self._value()}
        while True:
            token = self._next()
            if token.kind == ")":
                return tuple(sorted(values))
            if token.kind != ",":
                raise self._fail(token, "',' or ')' in a set of values")
            values.add(self._value())


def parse_selector(text: str | None) -> Selector:
    """Parse a label selector; None or blank text is the empty selector (matches everything).

    Raises `SelectorError` naming the offending token, its position and the expected form.
    """
    if text is None:
        return EVERYTHING
    return _parse_cached(text)


@functools.lru_cache(maxsize=4096)
def _parse_cached(text: str) -> Selector:
    # Each HPA sends the same selector every sync period; a Selector is immutable, so parse once.
    # Bad selectors raise and are not cached. 4096: a few times the HPAs a large cluster has.
    return _Parser(text).parse()
