"""`updraft validate FILE...`: check Updraft objects in YAML files offline, with the messages
the controllers would give.

MetricSources go through the adapter's parser with the default scaler registry (inline
`spec.trigger.auth` allowed, as in a standalone file); NodePools through the provisioner's
validation against the kwok provider's catalog, with the NodeClasses found in the same files;
a custom-metrics rules file (no `kind`, a `rules`-style mapping) through its loader. Objects
of other kinds are counted, not checked: the apiserver checks those. Nothing is contacted.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from adapter import (
    CustomMetricsConfigError,
    InvalidMetricSourceError,
    parse_config,
    parse_metric_source,
)
from provisioner.catalog import Catalog
from provisioner.errors import InvalidFieldError
from provisioner.objects import validate_nodepool
from scalers import default_registry

_RULE_KEYS = frozenset({"rules", "externalRules", "resourceRules", "prometheus"})
"""Top-level keys of a custom-metrics rules file (prometheus-adapter's form)."""


@dataclass(frozen=True)
class _Doc:
    path: Path
    index: int
    body: Any


def _load(path: Path) -> tuple[list[_Doc], str | None]:
    try:
        text = path.read_text()
    except (OSError, UnicodeError) as e:
        return [], f"{path}: cannot read: {getattr(e, 'strerror', None) or e}"
    try:
        bodies = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        return [], f"{path}: not valid YAML{line}: {problem}"
    return [_Doc(path, i, body) for i, body in enumerate(bodies, start=1)], None


def _label(doc: _Doc) -> str:
    body = doc.body
    kind = body.get("kind") or "?"
    name = (
        (body.get("metadata") or {}).get("name") if isinstance(body.get("metadata"), dict) else None
    )
    return f"{kind}/{name or f'(document {doc.index})'}"


def _with_secret(body: dict[str, Any], secrets: dict[tuple[str, str], Any]) -> dict[str, Any]:
    """A MetricSource whose authRef Secret is in the files, with that Secret's values inline,
    so the auth keys are checked as the controller checks them once it has read the Secret."""
    trigger = (body.get("spec") or {}).get("trigger") or {}
    ref = trigger.get("authRef") or {}
    namespace = (body.get("metadata") or {}).get("namespace") or "default"
    secret = secrets.get((str(namespace), str(ref.get("name"))))
    if not isinstance(secret, dict):
        return body
    values = {
        k: base64.b64decode(str(v)).decode(errors="replace")
        for k, v in (secret.get("data") or {}).items()
    }
    values.update({k: str(v) for k, v in (secret.get("stringData") or {}).items()})
    inline = {k: v for k, v in trigger.items() if k != "authRef"}
    inline["auth"] = values
    return {**body, "spec": {**body["spec"], "trigger": inline}}


def _check(
    doc: _Doc,
    *,
    nodeclasses: dict[str, Any],
    secrets: dict[tuple[str, str], Any],
    catalog: Catalog,
) -> str | None:
    """The problem with one document as `Kind/name: field: message`, or None."""
    body = doc.body
    if not isinstance(body, dict):
        return f"document {doc.index}: expected a mapping, got {type(body).__name__}"
    kind = body.get("kind")
    try:
        if kind == "MetricSource":
            parse_metric_source(
                _with_secret(body, secrets), registry=default_registry(), inline_auth=True
            )
        elif kind == "NodePool":
            ref = ((body.get("spec") or {}).get("template") or {}).get("spec") or {}
            name = (ref.get("nodeClassRef") or {}).get("name")
            validate_nodepool(body, nodeclasses.get(str(name)), catalog)
        elif kind is None and _RULE_KEYS & set(body):
            parse_config(body)
        elif kind is None:
            return f"document {doc.index}: no kind: not a Kubernetes object"
    except (InvalidMetricSourceError, InvalidFieldError, CustomMetricsConfigError) as e:
        return f"{_label(doc) if kind else f'document {doc.index}'}: {e}"
    return None


def validate(paths: Iterable[Path]) -> tuple[list[str], list[str]]:
    """(ok lines, problem lines), one line each, every line starting with its file."""
    loaded: list[tuple[Path, list[_Doc]]] = []
    problems: list[str] = []
    for path in paths:
        docs, error = _load(path)
        if error is not None:
            problems.append(error)
        else:
            loaded.append((path, docs))
    nodeclasses = {
        str((d.body.get("metadata") or {}).get("name")): d.body
        for _, docs in loaded
        for d in docs
        if isinstance(d.body, dict) and d.body.get("kind") == "NodeClass"
    }
    secrets = {
        (str(meta.get("namespace") or "default"), str(meta.get("name"))): d.body
        for _, docs in loaded
        for d in docs
        if isinstance(d.body, dict) and d.body.get("kind") == "Secret"
        for meta in [d.body.get("metadata") or {}]
    }
    catalog = Catalog.aws()
    oks: list[str] = []
    for path, docs in loaded:
        checked = (
            _check(d, nodeclasses=nodeclasses, secrets=secrets, catalog=catalog) for d in docs
        )
        found = [p for p in checked if p is not None]
        problems.extend(f"{path}: {p}" for p in found)
        if not found:
            oks.append(f"{path}: ok ({len(docs)} objects)")
    return oks, problems
