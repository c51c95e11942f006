"""Custom-metrics rules in prometheus-adapter's form: the config file and what each rule means.

Owns the YAML file `--custom-metrics-config` names (parsed with pydantic, unknown fields refused,
every error naming the rule index and field), and the pure logic of a rule: which series it keeps
(`seriesFilters`), the metric name a series gets (`name.matches` / `name.as`), which Kubernetes
resources its labels describe (`resources.overrides` / `resources.template`), and the PromQL it
runs (`metricsQuery` with `<<.Series>>`, `<<.LabelMatchers>>`, `<<.GroupBy>>`). It must not do
I/O beyond reading the file: Prometheus and Kubernetes are `prometheus_custom.py`'s business.

The file:

    prometheus: {url: http://prometheus.monitoring:9090, timeout: 3s}
    relistInterval: 1m      # how often every rule's seriesQuery is re-run (discovery)
    metricsMaxAge: 1m       # discovery sees series with a sample this recent (>= relistInterval)
    rules:
    - seriesQuery: 'packets_total{namespace!="",pod!=""}'
      seriesFilters: [{isNot: "^go_"}]
      resources:
        overrides: {namespace: {resource: namespace}, pod: {resource: pod}}
        # or: template: "<<.Resource>>"  (a label named like a resource, e.g. `pod`, `ingress`)
      name: {matches: "^(.*)_total$", as: "${1}-per-second"}
      metricsQuery: sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)

Regular expressions are Python's `re` (RE2's syntax for everything a rule normally needs), used
unanchored as Go's `MatchString` is; `as` expands Go-style (`$1`, `${1}`, `$name`, `$$`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pydantic
import yaml
from yarl import URL

from adapter.providers import GroupResource
from adapter.resources import KINDS, resolve
from adapter.selectors import Operator, Requirement, Selector, promql_label_name
from kits import parse_duration

__all__ = [
    "CustomMetricsConfig",
    "CustomMetricsConfigError",
    "Naming",
    "QueryTemplate",
    "ResourceLabels",
    "Rule",
    "SeriesFilter",
    "go_expand",
    "label_matchers",
    "load_config",
    "parse_config",
]

NAMESPACES = GroupResource("namespaces")


class CustomMetricsConfigError(ValueError):
    """The custom-metrics config cannot be used; the message names the file and field."""


# --- durations ------------------------------------------------------------------------------


def _duration(value: Any) -> float:
    """Seconds from a Go/Prometheus duration string (`500ms`, `3s`, `1m30s`)."""
    expected = "a duration such as 3s, 500ms or 1m30s"
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected {expected}, got {value!r}")
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise ValueError(f"expected {expected}, got {value!r}") from None
    if seconds <= 0:
        raise ValueError(f"expected a positive duration, got {value!r}")
    return seconds


Duration = Annotated[float, pydantic.BeforeValidator(_duration)]


# --- the file at the boundary ----------------------------------------------------------------


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class _Override(_Model):
    group: str = ""
    resource: str = pydantic.Field(min_length=1)


class _Resources(_Model):
    overrides: dict[str, _Override] = pydantic.Field(default_factory=dict)
    template: str | None = None
    namespaced: bool = True


class _Name(_Model):
    matches: str = ""
    as_: str = pydantic.Field(default="", alias="as")


class _Filter(_Model):
    is_: str | None = pydantic.Field(default=None, alias="is")
    is_not: str | None = pydantic.Field(default=None, alias="isNot")

    @pydantic.model_validator(mode="after")
    def _one(self) -> _Filter:
        if (self.is_ is None) == (self.is_not is None):
            raise ValueError("give exactly one of is and isNot")
        return self


class _Rule(_Model):
    series_query: str = pydantic.Field(alias="seriesQuery", min_length=1)
    series_filters: list[_Filter] = pydantic.Field(default_factory=list, alias="seriesFilters")
    resources: _Resources = pydantic.Field(default_factory=_Resources)
    name: _Name = pydantic.Field(default_factory=_Name)
    metrics_query: str = pydantic.Field(alias="metricsQuery", min_length=1)


class _Prometheus(_Model):
    url: str
    timeout: Duration = 3.0

    @pydantic.field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        try:
            url = URL(value)
            ok = url.scheme in ("http", "https") and bool(url.host)
        except (ValueError, TypeError):
            ok = False
        if not ok or url.query_string or url.fragment:
            raise ValueError(
                f"expected an http(s) URL such as http://prometheus:9090, got {value!r}"
            )
        return value.rstrip("/")


class _File(_Model):
    prometheus: _Prometheus
    relist_interval: Duration = pydantic.Field(default=60.0, alias="relistInterval")
    metrics_max_age: Duration | None = pydantic.Field(default=None, alias="metricsMaxAge")
    rules: list[_Rule] = pydantic.Field(min_length=1)


def _where(loc: Sequence[int | str]) -> str:
    """`('rules', 1, 'name', 'as')` as `rules[1].name.as`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "(top level)"


# --- what a rule means -----------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesFilter:
    """`is` keeps only series whose name matches; `isNot` drops those that match."""

    pattern: re.Pattern[str]
    keep_matching: bool

    def keeps(self, series: str) -> bool:
        return (self.pattern.search(series) is not None) == self.keep_matching


_EXPAND = re.compile(r"\$(?:\$|\{([^}]*)\}|([A-Za-z0-9_]+))")


def go_expand(template: str, match: re.Match[str]) -> str:
    """Go's `Regexp.ExpandString`: `$1`, `${1}`, `$name`, `${name}` and `$$`. `$name` takes the
    longest run of letters, digits and `_` (so `$1_x` is the group named `1_x`, i.e. empty); an
    unknown or unmatched group is empty; a `$` with nothing valid after it stays as it is."""

    def group(name: str) -> str:
        try:
            value = match.group(int(name) if name.isdigit() else name)
        except IndexError:  # no such group number or name
            return ""
        return value or ""

    out: list[str] = []
    pos = 0
    for found in _EXPAND.finditer(template):
        out.append(template[pos : found.start()])
        braced, bare = found.group(1), found.group(2)
        if braced is None and bare is None:
            out.append("$")
        elif braced is not None:
            out.append(group(braced) if re.fullmatch(r"[A-Za-z0-9_]+", braced) else found[0])
        else:
            out.append(group(bare))
        pos = found.end()
    out.append(template[pos:])
    return "".join(out)


@dataclass(frozen=True)
class Naming:
    """`name`: the metric a series is served as."""

    matches: re.Pattern[str]
    as_: str

    def metric_for(self, series: str) -> str | None:
        """The metric name of series `series`, or None when `matches` does not match it."""
        match = self.matches.search(series)
        if match is None:
            return None
        return go_expand(self.as_, match) or None


@dataclass(frozen=True)
class ResourceLabels:
    """`resources`: which label of a series names an object of which resource.

    Overrides name labels one by one; the template names every resource of the built-in table
    (`adapter.resources`) at once, rendered with its singular name (`pod`) and its group with
    dots as underscores (`networking_k8s_io`), as prometheus-adapter does.
    """

    by_label: Mapping[str, GroupResource]
    """Label -> resource, overrides winning over the template."""

    def resource_for(self, label: str) -> GroupResource | None:
        return self.by_label.get(label)

    def label_for(self, resource: GroupResource) -> str | None:
        for label, candidate in self.by_label.items():
            if candidate == resource:
                return label
        return None

    def resources_of(self, labels: Iterable[str]) -> dict[GroupResource, str]:
        """The resources a series with these label names describes, each with its label."""
        found: dict[GroupResource, str] = {}
        for label in labels:
            resource = self.by_label.get(label)
            if resource is not None and resource not in found:
                found[resource] = label
        return found


_PLACEHOLDER = re.compile(r"<<\s*\.([A-Za-z]+)\s*>>")
QUERY_FIELDS = ("Series", "LabelMatchers", "GroupBy")


@dataclass(frozen=True)
class QueryTemplate:
    """`metricsQuery`: PromQL with `<<.Series>>`, `<<.LabelMatchers>>` and `<<.GroupBy>>`."""

    text: str

    @classmethod
    def parse(cls, text: str) -> QueryTemplate:
        for found in _PLACEHOLDER.finditer(text):
            if found.group(1) not in QUERY_FIELDS:
                raise ValueError(
                    f"unknown field <<.{found.group(1)}>>; expected "
                    + ", ".join(f"<<.{f}>>" for f in QUERY_FIELDS)
                )
        leftover = _PLACEHOLDER.sub("", text)
        if "<<" in leftover or ">>" in leftover:
            raise ValueError(
                "a '<<' or '>>' that is not one of <<.Series>>, <<.LabelMatchers>>, <<.GroupBy>>"
            )
        return cls(text)

    def render(self, *, series: str, label_matchers: str, group_by: str) -> str:
        values = {"Series": series, "LabelMatchers": label_matchers, "GroupBy": group_by}
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.text)


@dataclass(frozen=True)
class Rule:
    index: int
    """Position in the file's `rules`, for messages."""
    series_query: str
    filters: tuple[SeriesFilter, ...]
    naming: Naming
    resources: ResourceLabels
    namespaced: bool
    """False: the rule's metrics are root-scoped and no namespace matcher is added."""
    query: QueryTemplate

    def keeps(self, series: str) -> bool:
        return all(f.keeps(series) for f in self.filters)


@dataclass(frozen=True)
class CustomMetricsConfig:
    prometheus_url: str
    timeout: float
    """Seconds for every Prometheus call; 3 s, as the scalers' default, inside the HPA's budget."""
    relist_interval: float
    """Seconds between discoveries; 1 min, as prometheus-adapter's manifests set it."""
    metrics_max_age: float
    """Discovery looks back this far for series; defaults to the relist interval, so a series that
    stopped before the last relist disappears with the next."""
    rules: tuple[Rule, ...]


def label_matchers(
    *,
    namespace: tuple[str, str] | None,
    resource_label: str,
    names: Sequence[str] | None,
    selector: Selector,
    metric_selector: Selector,
) -> str:
    """`<<.LabelMatchers>>`: the namespace `(label, value)` when given, the objects' names on
    `resource_label` (`=` for one, `=~` for several; nothing for None), then `selector` (object
    labels carried by the series, standalone mode) and `metric_selector`, comma-separated."""
    parts: list[str] = []
    if namespace is not None:
        label, value = namespace
        parts.append(
            Requirement(label, Operator.EQUALS, (value,)).to_promql(promql_label_name(label))
        )
    if names is not None:
        distinct = tuple(sorted(set(names)))
        operator = Operator.EQUALS if len(distinct) == 1 else Operator.IN
        requirement = Requirement(resource_label, operator, distinct)
        parts.append(requirement.to_promql(promql_label_name(resource_label)))
    for extra in (selector, metric_selector):
        if extra:
            parts.append(extra.to_promql())
    return ",".join(parts)


def _compile(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as e:
        raise CustomMetricsConfigError(f"{where}: not a regular expression: {e}") from None


def _template_labels(template: str, where: str) -> dict[str, GroupResource]:
    fields = [m.group(1) for m in _PLACEHOLDER.finditer(template)]
    if "Resource" not in fields or not set(fields) <= {"Group", "Resource"}:
        raise CustomMetricsConfigError(
            f"{where}: expected a template with <<.Resource>> and optionally <<.Group>>, "
            f'such as "<<.Resource>>" or "<<.Group>>_<<.Resource>>", got {template!r}'
        )
    labels: dict[str, GroupResource] = {}
    for kind in KINDS:
        values = {"Group": kind.group.replace(".", "_"), "Resource": kind.singular}

        def value(m: re.Match[str], values: dict[str, str] = values) -> str:
            return values[m.group(1)]

        labels.setdefault(_PLACEHOLDER.sub(value, template), kind.group_resource)
    return labels


def _rule(index: int, raw: _Rule) -> Rule:
    where = f"rules[{index}]"
    filters = []
    for i, f in enumerate(raw.series_filters):
        field = "is" if f.is_ is not None else "isNot"
        pattern = f.is_ if f.is_ is not None else f.is_not
        assert pattern is not None  # the model validator saw to it
        compiled = _compile(pattern, f"{where}.seriesFilters[{i}].{field}")
        filters.append(SeriesFilter(compiled, keep_matching=f.is_ is not None))
    matches = _compile(raw.name.matches or ".*", f"{where}.name.matches")
    as_ = raw.name.as_
    if not as_:
        if matches.groups == 0:
            as_ = "$0"
        elif matches.groups == 1:
            as_ = "$1"
        else:
            raise CustomMetricsConfigError(
                f"{where}.name.as: required when name.matches has {matches.groups} capture groups"
            )
    by_label: dict[str, GroupResource] = {}
    if raw.resources.template is not None:
        by_label.update(_template_labels(raw.resources.template, f"{where}.resources.template"))
    for label, override in raw.resources.overrides.items():
        given = GroupResource(override.resource.lower(), override.group.lower())
        kind = resolve(given)
        by_label[label] = kind.group_resource if kind is not None else given
    if not by_label:
        raise CustomMetricsConfigError(
            f"{where}.resources: give overrides or a template, so series labels name objects"
        )
    try:
        query = QueryTemplate.parse(raw.metrics_query)
    except ValueError as e:
        raise CustomMetricsConfigError(f"{where}.metricsQuery: {e}") from None
    return Rule(
        index=index,
        series_query=raw.series_query,
        filters=tuple(filters),
        naming=Naming(matches, as_),
        resources=ResourceLabels(by_label),
        namespaced=raw.resources.namespaced,
        query=query,
    )


def parse_config(document: Any) -> CustomMetricsConfig:
    """The config from its YAML/JSON form; raises `CustomMetricsConfigError` naming the field."""
    if not isinstance(document, dict):
        raise CustomMetricsConfigError(
            f"expected a mapping with prometheus and rules, got {type(document).__name__}"
        )
    try:
        model = _File.model_validate(document)
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        raise CustomMetricsConfigError(f"{_where(first['loc'])}: {message}") from None
    max_age = model.metrics_max_age if model.metrics_max_age is not None else model.relist_interval
    if max_age < model.relist_interval:
        raise CustomMetricsConfigError(
            f"metricsMaxAge: {max_age:g}s is shorter than relistInterval "
            f"({model.relist_interval:g}s); series would vanish between relists"
        )
    return CustomMetricsConfig(
        prometheus_url=model.prometheus.url,
        timeout=model.prometheus.timeout,
        relist_interval=model.relist_interval,
        metrics_max_age=max_age,
        rules=tuple(_rule(i, r) for i, r in enumerate(model.rules)),
    )


def load_config(path: Path) -> CustomMetricsConfig:
    """`parse_config` of the YAML file at `path`; every error starts with the path."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as e:
        raise CustomMetricsConfigError(f"{path}: cannot read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise CustomMetricsConfigError(f"{path}: not valid YAML: {e}") from None
    try:
        return parse_config(document)
    except CustomMetricsConfigError as e:
        raise CustomMetricsConfigError(f"{path}: {e}") from None
