"""MetricSources: what an External metric is, and serving them through the shared cache.

Owns the `MetricSource` object (`updraft.io/v1alpha1`, namespaced): parsing it at the boundary
(pydantic, unknown fields refused, every error naming the field), turning it into a scalers
`TriggerSpec` + `TriggerPolicy`, and `MetricSourceProvider`, the `ExternalMetrics` provider that
answers from `MetricCache`. The object's name is the External metric name in its namespace.

It must not talk to Kubernetes: where sources come from (the CRD through `kube`, or a standalone
YAML file) is the caller's business, and so is writing status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pydantic

from adapter.errors import MetricNotFoundError, UnavailableError
from adapter.providers import EXTERNAL_GROUP, ExternalSample, MetricRef, match_name
from adapter.selectors import Selector
from scalers import (
    ConfigError,
    Fallback,
    MetricCache,
    Registry,
    TriggerPolicy,
    TriggerSpec,
    UpstreamError,
)

API_VERSION = "updraft.io/v1alpha1"
KIND = "MetricSource"
LABEL_MATCHERS = "<<.LabelMatchers>>"
"""In a Prometheus query, replaced by the request's labelSelector as PromQL matchers, so one
MetricSource serves many label sets (prometheus-adapter's spelling)."""


class InvalidMetricSourceError(ValueError):
    """A MetricSource that cannot be served; `field` is its path (`spec.trigger.type`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class UnservableSourceError(ValueError):
    """A MetricSource exists but cannot be served; the message names it and says why."""


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _AuthRef(_Model):
    name: str = pydantic.Field(min_length=1)


class _Trigger(_Model):
    type: str = pydantic.Field(min_length=1)
    metadata: dict[str, str] = pydantic.Field(default_factory=dict)
    auth_ref: _AuthRef | None = pydantic.Field(default=None, alias="authRef")
    auth: dict[str, str] | None = None
    """Inline auth values: standalone files only (a cluster keeps them in Secrets)."""


MAX_POLLING_INTERVAL = 86400
"""One day: a value fresh for longer is not autoscaling any more (the CRD has the same bound)."""
MAX_FAILURE_THRESHOLD = 100
"""A hundred failed queries (50 minutes at the 30 s default) before the fallback: more is a
typo, not a policy (the CRD has the same bound)."""


class _Fallback(_Model):
    failure_threshold: int = pydantic.Field(
        alias="failureThreshold", ge=1, le=MAX_FAILURE_THRESHOLD
    )
    value: float | None = pydantic.Field(default=None, allow_inf_nan=False)


class _Spec(_Model):
    trigger: _Trigger
    polling_interval: int = pydantic.Field(
        default=30, alias="pollingInterval", ge=1, le=MAX_POLLING_INTERVAL
    )
    fallback: _Fallback | None = None


class _Metadata(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", frozen=True)
    name: str = pydantic.Field(
        min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
    )
    namespace: str | None = None
    """None when the object names none: ``parse`` then takes its ``default_namespace``."""
    generation: int = 0


class _Object(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", frozen=True)
    api_version: str = pydantic.Field(alias="apiVersion")
    kind: str
    metadata: _Metadata
    spec: _Spec


@dataclass(frozen=True)
class MetricSource:
    namespace: str
    name: str
    type: str
    metadata: Mapping[str, str]
    policy: TriggerPolicy
    auth_ref: str | None = None
    auth: Mapping[str, str] = field(default_factory=dict, repr=False)
    generation: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name

    def with_auth(self, auth: Mapping[str, str]) -> MetricSource:
        return MetricSource(
            namespace=self.namespace,
            name=self.name,
            type=self.type,
            metadata=self.metadata,
            policy=self.policy,
            auth_ref=self.auth_ref,
            auth=dict(auth),
            generation=self.generation,
        )

    def spec(self, selector: Selector | None = None) -> TriggerSpec:
        """The trigger to measure; a Prometheus query's `<<.LabelMatchers>>` becomes the
        selector's PromQL matchers (nothing, for no selector)."""
        metadata = dict(self.metadata)
        query = metadata.get("query")
        if self.type == "prometheus" and query is not None and LABEL_MATCHERS in query:
            matchers = selector.to_promql() if selector else ""
            metadata["query"] = query.replace(LABEL_MATCHERS, matchers)
        return TriggerSpec(type=self.type, metadata=metadata, auth=self.auth)


def _field_path(loc: tuple[int | str, ...]) -> str:
    names = {
        "auth_ref": "authRef",
        "polling_interval": "pollingInterval",
        "failure_threshold": "failureThreshold",
        "api_version": "apiVersion",
    }
    return ".".join(names.get(str(p), str(p)) for p in loc)


def parse(
    obj: Mapping[str, Any],
    *,
    registry: Registry,
    inline_auth: bool = False,
    default_namespace: str = "default",
) -> MetricSource:
    """A MetricSource from its JSON/YAML form; raises `InvalidMetricSourceError` naming the
    first bad field. `inline_auth` admits `spec.trigger.auth` (standalone files)."""
    try:
        model = _Object.model_validate(obj)
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        raise InvalidMetricSourceError(_field_path(first["loc"]), first["msg"]) from None
    if model.api_version != API_VERSION or model.kind != KIND:
        raise InvalidMetricSourceError(
            "apiVersion", f"expected {API_VERSION} {KIND}, got {model.api_version} {model.kind}"
        )
    trigger = model.spec.trigger
    if trigger.auth is not None and not inline_auth:
        raise InvalidMetricSourceError(
            "spec.trigger.auth", "inline auth is for standalone files; use authRef to a Secret"
        )
    if trigger.type not in registry.types():
        raise InvalidMetricSourceError(
            "spec.trigger.type",
            f"unknown scaler type {trigger.type!r}; expected one of {', '.join(registry.types())}",
        )
    fallback = None
    if model.spec.fallback is not None:
        fallback = Fallback(
            failure_threshold=model.spec.fallback.failure_threshold,
            value=model.spec.fallback.value,
        )
    namespace = model.metadata.namespace
    source = MetricSource(
        namespace=default_namespace if namespace is None else namespace,
        name=model.metadata.name,
        type=trigger.type,
        metadata=dict(trigger.metadata),
        policy=TriggerPolicy(
            polling_interval=float(model.spec.polling_interval),
            # Stale values may be served for four intervals, at least the 2 min default.
            staleness_bound=max(120.0, 4.0 * model.spec.polling_interval),
            fallback=fallback,
        ),
        auth_ref=trigger.auth_ref.name if trigger.auth_ref else None,
        auth=dict(trigger.auth or {}),
        generation=model.metadata.generation,
    )
    if source.auth_ref is None:
        # With an authRef the auth values are not known yet: the caller validates once it has
        # read the Secret (see `validate`).
        validate(source, registry=registry)
    return source


def validate(source: MetricSource, *, registry: Registry) -> None:
    """Raise `InvalidMetricSourceError` for the first problem of `source`'s trigger, with
    its auth values as they are now (inline, or read from the `authRef` Secret)."""
    try:
        registry.validate(source.spec(), ignore=())
    except ConfigError as e:
        raise config_error(source, e) from None


def config_error(source: MetricSource, error: ConfigError) -> InvalidMetricSourceError:
    """`error` named by the field a user edits: the Secret for an auth key of an `authRef`,
    `spec.trigger.auth.<key>` for inline auth, else `spec.trigger.metadata.<key>`."""
    in_auth = error.in_auth or (error.key in source.auth and error.key not in source.metadata)
    if not in_auth:
        return InvalidMetricSourceError(f"spec.trigger.metadata.{error.key}", str(error))
    if source.auth_ref is None:
        return InvalidMetricSourceError(f"spec.trigger.auth.{error.key}", str(error))
    secret = f"Secret {source.namespace}/{source.auth_ref}"
    if error.value is None:
        problem = f'{secret} has no key "{error.key}" (expected {error.expected})'
    else:
        problem = f'{secret} key "{error.key}": got {error.value!r}, expected {error.expected}'
    return InvalidMetricSourceError("spec.trigger.authRef", problem)


class MetricSourceProvider:
    """`ExternalMetrics` over MetricSources: values come from the shared `MetricCache`.

    A source that cannot be served (its spec or Secret is bad) stays known with its reason, so
    an HPA or KEDA asking for it is told why instead of "not found"."""

    def __init__(self, cache: MetricCache) -> None:
        self._cache = cache
        self._sources: dict[tuple[str, str], MetricSource] = {}
        self._invalid: dict[tuple[str, str], str] = {}
        self._names: dict[str, set[str]] = {}
        self._refs: tuple[MetricRef, ...] = ()

    def upsert(self, source: MetricSource) -> None:
        self._sources[source.key] = source
        self._invalid.pop(source.key, None)
        self._rebuild()

    def mark_invalid(self, namespace: str, name: str, reason: str) -> None:
        """`namespace/name` exists but cannot be served; `reason` is what status says."""
        self._sources.pop((namespace, name), None)
        self._invalid[namespace, name] = reason
        self._rebuild()

    def remove(self, namespace: str, name: str) -> None:
        found = self._sources.pop((namespace, name), None)
        if self._invalid.pop((namespace, name), None) is not None or found is not None:
            self._rebuild()

    def replace_all(self, sources: Sequence[MetricSource]) -> None:
        self._sources = {s.key: s for s in sources}
        self._invalid = {}
        self._rebuild()

    def sources(self) -> list[MetricSource]:
        return list(self._sources.values())

    def _find(self, namespace: str, name: str) -> MetricSource | None:
        """The source `name` names in `namespace` (by `match_name`'s case rule); raises
        `UnservableSourceError` for a known but invalid one."""
        found = match_name(name, self._names.get(namespace, set()))
        if found is None:
            return None
        reason = self._invalid.get((namespace, found))
        if reason is not None:
            raise UnservableSourceError(f"MetricSource {namespace}/{found} is invalid: {reason}")
        return self._sources[namespace, found]

    def trigger_for(
        self, namespace: str, name: str
    ) -> tuple[str, TriggerSpec, TriggerPolicy] | None:
        """The MetricSource's own name, trigger and policy, for a KEDA trigger's
        `metricSourceRef`; None when there is none, `UnservableSourceError` (a ValueError)
        when it is invalid."""
        source = self._find(namespace, name)
        return None if source is None else (source.name, source.spec(), source.policy)

    def _rebuild(self) -> None:
        keys = sorted({*self._sources, *self._invalid})
        names: dict[str, set[str]] = {}
        for ns, n in keys:
            names.setdefault(ns, set()).add(n)
        self._names = names
        self._refs = tuple(MetricRef(name=n, namespace=ns) for ns, n in keys)

    async def list_metrics(self) -> Sequence[MetricRef]:
        return self._refs

    async def get(
        self, *, namespace: str, name: str, selector: Selector
    ) -> Sequence[ExternalSample]:
        try:
            source = self._find(namespace, name)
        except UnservableSourceError as e:
            raise UnavailableError(str(e)) from None
        if source is None:
            raise MetricNotFoundError(name, group=EXTERNAL_GROUP)
        try:
            measurement = await self._cache.get(source.spec(selector), source.policy)
        except UpstreamError as e:
            raise UnavailableError(f"MetricSource {namespace}/{source.name}: {e}") from None
        except ConfigError as e:
            raise UnavailableError(
                f"MetricSource {namespace}/{source.name} is invalid: {e}"
            ) from None
        return [
            ExternalSample(
                metric_name=source.name, value=measurement.value, timestamp=measurement.at
            )
        ]
