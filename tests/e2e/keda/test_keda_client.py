"""KEDA v2.21.0 driving Updraft's gRPC door in the real control plane: a cron window scales
0 -> N -> 0 on time, and bad metadata reaches `kubectl describe scaledobject` as a
`KEDAScalerFailed` Event carrying Updraft's message."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from tests.cluster.controlplane import ControlPlane
from tests.e2e.keda.conftest import Keda, Updraft, apply, kubectl
from tests.e2e.waiting import eventually

pytestmark = pytest.mark.usefixtures("keda")


def deployment(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
            },
        },
    }


def tls_auth(updraft: Updraft) -> list[dict[str, Any]]:
    """The shipped example's TriggerAuthentication: caCert from a Secret."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "updraft-scaler-ca"},
            "stringData": {"ca.crt": updraft.ca_pem()},
        },
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "TriggerAuthentication",
            "metadata": {"name": "updraft-scaler-tls"},
            "spec": {
                "secretTargetRef": [
                    {"parameter": "caCert", "name": "updraft-scaler-ca", "key": "ca.crt"}
                ]
            },
        },
    ]


def scaled_object(
    name: str, metadata: dict[str, str], *, kind: str = "external", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"name": name},
            "minReplicaCount": 0,
            "maxReplicaCount": 10,
            "pollingInterval": 5,
            "cooldownPeriod": 5,
            **spec,
            "triggers": [
                {
                    "type": kind,
                    "authenticationRef": {"name": "updraft-scaler-tls"},
                    "metadata": metadata,
                }
            ],
        },
    }


def get(cp: ControlPlane, namespace: str, *what: str) -> Any:
    return orjson.loads(kubectl(cp, "-n", namespace, "get", *what, "-o", "json"))


async def replicas(cp: ControlPlane, namespace: str, name: str) -> int:
    return int(get(cp, namespace, "deployment", name)["spec"].get("replicas", 1))


async def test_bad_metadata_is_a_kedascalerfailed_event_naming_the_key(
    control_plane: ControlPlane, updraft: Updraft, keda: Keda, namespace: str
) -> None:
    metadata = {
        "scalerAddress": updraft.address,
        "enableTLS": "true",
        "scalerType": "redis",
        "address": "127.0.0.1:1",
    }  # no listName
    items = [*tls_auth(updraft), deployment("bad"), scaled_object("bad", metadata)]
    apply(control_plane, keda.work, f"{namespace}-bad", items, namespace=namespace)

    async def failed_event() -> str | None:
        events = get(control_plane, namespace, "events")["items"]
        for e in events:
            if e.get("reason") == "KEDAScalerFailed" and "listName" in e.get("message", ""):
                return str(e["message"])
        return None

    message = await eventually(failed_event, within=90, what="a KEDAScalerFailed Event")
    assert "scalerMetadata.listName" in message
    described = kubectl(control_plane, "-n", namespace, "describe", "scaledobject", "bad")
    assert "listName" in described


async def test_cron_window_scales_zero_to_desired_and_back_on_time(
    control_plane: ControlPlane, updraft: Updraft, keda: Keda, namespace: str
) -> None:
    now = dt.datetime.now(dt.UTC)
    start = (now + dt.timedelta(minutes=1)).replace(second=0, microsecond=0)
    end = start + dt.timedelta(minutes=1)
    metadata = {
        "scalerAddress": updraft.address,
        "enableTLS": "true",
        "scalerType": "cron",
        "timezone": "UTC",
        "start": f"{start.minute} {start.hour} * * *",
        "end": f"{end.minute} {end.hour} * * *",
        "desiredReplicas": "3",
    }
    items = [*tls_auth(updraft), deployment("web"), scaled_object("web", metadata)]
    apply(control_plane, keda.work, f"{namespace}-cron", items, namespace=namespace)

    async def at(count: int) -> bool | None:
        return True if await replicas(control_plane, namespace, "web") == count else None

    assert await replicas(control_plane, namespace, "web") == 0
    await eventually(lambda: at(3), within=150, what="3 replicas inside the window")
    await eventually(lambda: at(0), within=120, what="0 replicas after the window")
