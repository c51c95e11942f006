"""`updraft certs`: the adapter's serving certificate without cert-manager.

Owns issuing a CA and a serving pair for the adapter's Service (the generation is
`adapter.issue_serving_pair`, the same the self-signed fallback uses), writing them into the
kubernetes.io/tls Secret the Deployment mounts (with `ca.crt`), and setting `spec.caBundle` of
the APIServices that route to that Service. Idempotent: a valid pair already in the Secret is
kept (its CA re-applied to the APIServices) unless `--rotate`. It must not touch anything but
that Secret and those APIServices' caBundle, and checks every APIService before writing the
Secret, so a typo leaves the cluster as it was.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from adapter import ServingPairPem, issue_serving_pair, serving_pair_problem
from kits import SystemClock
from kube import JSON, SECRETS, Api, KubeError, NotFoundError, Resource, connect

APISERVICES = Resource("apiregistration.k8s.io", "v1", "apiservices", namespaced=False)
SECRET = "updraft-serving-cert"
"""The Secret `manifests/base/deployment.yaml` mounts at /var/run/serving-cert."""
TLS_TYPE = "kubernetes.io/tls"


class CertsError(Exception):
    """The command cannot do what was asked; the message says what to change."""


@dataclass(frozen=True)
class CertsSettings:
    namespace: str
    service: str
    secret: str = SECRET
    apiservices: tuple[str, ...] = ()
    kubeconfig: Path | None = None
    rotate: bool = False


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    c = commands.add_parser(
        "certs",
        help="issue the metrics API's serving certificate into its Secret and the APIServices' "
        "caBundle (without cert-manager)",
    )
    c.add_argument("--namespace", required=True, help="the adapter's namespace")
    c.add_argument("--service", required=True, help="the adapter's Service (the APIServices')")
    c.add_argument(
        "--secret", default=SECRET, help="the kubernetes.io/tls Secret (default: %(default)s)"
    )
    c.add_argument(
        "--apiservice",
        action="append",
        default=[],
        metavar="NAME",
        help="an APIService whose spec.caBundle gets the CA (repeatable)",
    )
    c.add_argument(
        "--kubeconfig",
        type=Path,
        help="the cluster (default: $KUBECONFIG, else ~/.kube/config, else in-cluster)",
    )
    c.add_argument(
        "--rotate", action="store_true", help="issue a new pair even if the Secret's is valid"
    )


def default_kubeconfig() -> Path | None:
    """Where kubectl would look: this command is run from a workstation, like kubectl, more
    often than from a pod."""
    listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    if listed:
        return Path(listed[0])
    home = Path.home() / ".kube" / "config"
    return home if home.is_file() else None


def settings_from(args: argparse.Namespace) -> CertsSettings:
    return CertsSettings(
        namespace=args.namespace,
        service=args.service,
        secret=args.secret,
        apiservices=tuple(dict.fromkeys(args.apiservice)),
        kubeconfig=args.kubeconfig or default_kubeconfig(),
        rotate=args.rotate,
    )


def run(args: argparse.Namespace) -> int:
    """The console script's `certs` command: 0, or 2 with one line on stderr."""
    try:
        for line in asyncio.run(ensure_certs(settings_from(args))):
            print(line)
    except (CertsError, KubeError) as e:
        print(f"updraft certs: {e}", file=sys.stderr)
        return 2
    except (aiohttp.ClientError, OSError) as e:
        print(f"updraft certs: cannot reach the cluster: {e}", file=sys.stderr)
        return 2
    return 0


def _pair_in(secret: JSON) -> ServingPairPem | None:
    data = secret.get("data") or {}
    try:
        ca, cert, key = (base64.b64decode(data[k]) for k in ("ca.crt", "tls.crt", "tls.key"))
    except (KeyError, binascii.Error, TypeError):
        return None
    return ServingPairPem(ca=ca, cert=cert, key=key)


def _secret_body(settings: CertsSettings, pair: ServingPairPem, resource_version: str) -> JSON:
    metadata: JSON = {
        "name": settings.secret,
        "namespace": settings.namespace,
        "labels": {"app.kubernetes.io/name": "updraft", "app.kubernetes.io/managed-by": "updraft"},
    }
    if resource_version:
        metadata["resourceVersion"] = resource_version
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": TLS_TYPE,
        "metadata": metadata,
        "data": {
            k: base64.b64encode(v).decode("ascii")
            for k, v in (("ca.crt", pair.ca), ("tls.crt", pair.cert), ("tls.key", pair.key))
        },
    }


async def _check_apiservice(api: Api, name: str, settings: CertsSettings) -> None:
    try:
        obj = await api.get(APISERVICES, name)
    except NotFoundError:
        raise CertsError(f"--apiservice: APIService {name} does not exist") from None
    service = (obj.get("spec") or {}).get("service") or {}
    target = (service.get("namespace"), service.get("name"))
    if target != (settings.namespace, settings.service):
        where = "/".join(str(t) for t in target) if service else "no Service (served locally)"
        raise CertsError(
            f"--apiservice: APIService {name} routes to {where}, not "
            f"{settings.namespace}/{settings.service}"
        )


async def ensure_certs(settings: CertsSettings) -> list[str]:
    """Make the Secret hold a valid pair and the APIServices trust its CA; what was done, one
    line each."""
    api_client = await connect(str(settings.kubeconfig) if settings.kubeconfig else None)
    async with api_client:
        api = Api(api_client)
        for name in settings.apiservices:
            await _check_apiservice(api, name, settings)
        where = f"secret {settings.namespace}/{settings.secret}"
        try:
            existing: JSON | None = await api.get(SECRETS, settings.secret, settings.namespace)
        except NotFoundError:
            existing = None
        if existing is not None and existing.get("type") != TLS_TYPE:
            raise CertsError(
                f"--secret: {where} has type {existing.get('type')!r}, expected {TLS_TYPE!r}; "
                "delete it or name another Secret"
            )
        now = SystemClock().now()
        pair = _pair_in(existing) if existing is not None else None
        problem = (
            "none"
            if pair is None
            else serving_pair_problem(
                pair, service=settings.service, namespace=settings.namespace, now=now
            )
        )
        done: list[str] = []
        if pair is not None and problem is None and not settings.rotate:
            done.append(f"{where}: kept (valid)")
        else:
            pair = issue_serving_pair(
                service=settings.service, namespace=settings.namespace, now=now
            )
            if existing is None:
                await api.create(SECRETS, _secret_body(settings, pair, ""), settings.namespace)
                done.append(f"{where}: created")
            else:
                version = existing["metadata"]["resourceVersion"]
                await api.replace(
                    SECRETS, _secret_body(settings, pair, version), settings.namespace
                )
                why = "rotated" if settings.rotate and problem is None else f"replaced ({problem})"
                done.append(f"{where}: {why}")
        bundle = base64.b64encode(pair.ca).decode("ascii")
        for name in settings.apiservices:
            await api.patch(APISERVICES, name, {"spec": {"caBundle": bundle}})
            done.append(f"apiservice {name}: caBundle set")
        return done
