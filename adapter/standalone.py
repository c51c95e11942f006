"""Standalone mode: MetricSources from a YAML file instead of the cluster.

Owns reading a file of MetricSource documents (the same objects one would apply to a cluster,
`---`-separated; `spec.trigger.auth` may hold auth values inline, since there are no Secrets),
and naming the document and field of the first problem. All or nothing: a file with one bad
document loads none of it, and a file with no MetricSource at all is refused.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from adapter.metricsources import InvalidMetricSourceError, MetricSource, parse
from kube import name_of
from scalers import Registry


class StandaloneConfigError(ValueError):
    """The standalone file cannot be used; the message names the document and field."""


def load(path: Path, *, registry: Registry, allow_empty: bool = False) -> list[MetricSource]:
    """The MetricSources in `path`; `allow_empty` admits a file with none (custom metrics are
    then all the process serves)."""
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except OSError as e:
        raise StandaloneConfigError(f"{path}: cannot read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise StandaloneConfigError(f"{path}: not valid YAML: {e}") from None
    if not documents and not allow_empty:
        # Serving nothing is never what a user meant: likely the wrong file, or an empty one.
        raise StandaloneConfigError(
            f"{path}: holds no MetricSource documents; expected at least one"
        )
    sources: list[MetricSource] = []
    seen: set[tuple[str, str]] = set()
    for index, doc in enumerate(documents, start=1):
        if not isinstance(doc, dict):
            kind = type(doc).__name__
            raise StandaloneConfigError(
                f"{path}: document {index}: expected a MetricSource mapping, got {kind}"
            )
        try:
            source = parse(doc, registry=registry, inline_auth=True)
        except InvalidMetricSourceError as e:
            name = name_of(doc) or "?"
            raise StandaloneConfigError(f"{path}: document {index} ({name}): {e}") from None
        if source.key in seen:
            raise StandaloneConfigError(
                f"{path}: document {index}: MetricSource {source.namespace}/{source.name} "
                "is defined twice"
            )
        seen.add(source.key)
        sources.append(source)
    return sources
