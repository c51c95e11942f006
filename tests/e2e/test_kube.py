"""kube/ against the real apiserver: informers (list, watch, 410 re-list) and leader election."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio import client

from kube import (
    CONFIGMAPS,
    LEASES,
    Api,
    Event,
    Informer,
    LeaderElector,
    LeaderSettings,
    Resource,
)
from tests.cluster.controlplane import ControlPlane
from tests.e2e.waiting import eventually


@pytest.fixture
def api(kube: client.ApiClient) -> Api:
    return Api(kube)


MINE = "updraft.io/e2e=informer"
"""Only the test's own ConfigMaps: the root-CA publisher adds kube-root-ca.crt to every
namespace at a moment of its choosing."""


def _cm(name: str, value: str) -> dict[str, object]:
    return {
        "metadata": {"name": name, "labels": {"updraft.io/e2e": "informer"}},
        "data": {"v": value},
    }


PODTEMPLATES = Resource("", "v1", "podtemplates", namespaced=True)
"""Served without the watch cache in the test control plane, so etcd compaction yields 410."""


def _template(name: str, value: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "template": {
            "metadata": {"labels": {"v": value}},
            "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]},
        },
    }


def _value(obj: dict[str, Any]) -> str | None:
    """The test's marker value: a ConfigMap's data.v or a PodTemplate's label v."""
    holder = obj.get("data") if "data" in obj else obj["template"]["metadata"]["labels"]
    value = (holder or {}).get("v")
    return None if value is None else str(value)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str | None]] = []

    async def __call__(self, event: Event) -> None:
        meta = event.object["metadata"]
        self.events.append((event.type, meta["name"], _value(event.object)))


@pytest.fixture
async def informer_parts(
    api: Api, namespace: str
) -> AsyncIterator[tuple[Recorder, list[Informer]]]:
    recorder = Recorder()
    informers: list[Informer] = []
    yield recorder, informers
    for informer in informers:
        await informer.close()


async def test_informer_sees_adds_updates_and_deletes(
    api: Api, namespace: str, informer_parts: tuple[Recorder, list[Informer]]
) -> None:
    recorder, informers = informer_parts
    await api.create(CONFIGMAPS, _cm("before", "0"), namespace)
    informer = Informer(api, CONFIGMAPS, handler=recorder, namespace=namespace, label_selector=MINE)
    informers.append(informer)
    informer.start()
    await asyncio.wait_for(informer.synced.wait(), 30)
    assert recorder.events == [("ADDED", "before", "0")]

    await api.create(CONFIGMAPS, _cm("a", "1"), namespace)
    current = await api.get(CONFIGMAPS, "a", namespace)
    current["data"] = {"v": "2"}
    await api.replace(CONFIGMAPS, current, namespace)
    await api.delete(CONFIGMAPS, "a", namespace)

    async def three_more() -> list[tuple[str, str, str | None]] | None:
        return recorder.events[1:] if len(recorder.events) >= 4 else None

    seen = await eventually(three_more, within=30, what="add, update and delete events")
    assert seen == [("ADDED", "a", "1"), ("MODIFIED", "a", "2"), ("DELETED", "a", "2")]
    assert set(informer.store) == {(namespace, "before")}
    assert informer.relists == 0


async def test_informer_relists_after_410_and_reports_only_the_difference(
    api: Api,
    namespace: str,
    control_plane: ControlPlane,
    informer_parts: tuple[Recorder, list[Informer]],
) -> None:
    recorder, informers = informer_parts
    kept = await api.create(PODTEMPLATES, _template("kept", "same"), namespace)
    changed = await api.create(PODTEMPLATES, _template("changed", "old"), namespace)
    gone = await api.create(PODTEMPLATES, _template("gone", "x"), namespace)
    _, snapshot_rv = await api.list(PODTEMPLATES, namespace)
    snapshot = [kept, changed, gone]

    # While no informer watches: one object changes, one goes, one arrives; then etcd's
    # history is compacted, so the snapshot's resourceVersion can no longer be watched from.
    changed["template"]["metadata"]["labels"]["v"] = "new"
    await api.replace(PODTEMPLATES, changed, namespace)
    await api.delete(PODTEMPLATES, "gone", namespace)
    await api.create(PODTEMPLATES, _template("added", "x"), namespace)
    await asyncio.to_thread(control_plane.compact_etcd)

    informer = Informer(
        api, PODTEMPLATES, handler=recorder, namespace=namespace, seed=(snapshot, snapshot_rv)
    )
    informers.append(informer)
    informer.start()

    async def relisted() -> int | None:
        return informer.relists if informer.relists >= 1 and len(recorder.events) >= 3 else None

    await eventually(relisted, within=30, what="a re-list after 410 Gone")
    assert sorted(recorder.events) == [
        ("ADDED", "added", "x"),
        ("DELETED", "gone", "x"),
        ("MODIFIED", "changed", "new"),
    ]
    assert set(informer.store) == {(namespace, n) for n in ("kept", "changed", "added")}


async def test_exactly_one_leader_and_failover_on_release(api: Api, namespace: str) -> None:
    settings = LeaderSettings(lease_duration=3.0, renew_deadline=2.0, retry_period=0.2)
    electors: list[LeaderElector] = []
    both_led = False

    def watch_overlap(_: bool) -> None:
        nonlocal both_led
        both_led = both_led or all(e.is_leader.is_set() for e in electors)

    for identity in ("replica-a", "replica-b"):
        elector = LeaderElector(
            api,
            namespace=namespace,
            name="updraft-test",
            identity=identity,
            settings=settings,
            on_change=watch_overlap,
        )
        electors.append(elector)
        elector.start()
    try:

        async def one_leader() -> LeaderElector | None:
            leaders = [e for e in electors if e.is_leader.is_set()]
            return leaders[0] if len(leaders) == 1 else None

        first = await eventually(one_leader, within=30, what="one leader")
        lease = await api.get(LEASES, "updraft-test", namespace)
        assert lease["spec"]["holderIdentity"] == first.identity
        await first.close()

        async def other_leads() -> LeaderElector | None:
            leader = await one_leader()
            return leader if leader is not None and leader is not first else None

        second = await eventually(other_leads, within=30, what="the other replica to take over")
        lease = await api.get(LEASES, "updraft-test", namespace)
        assert lease["spec"]["holderIdentity"] == second.identity
        assert lease["spec"]["leaseTransitions"] >= 1
        assert not both_led
    finally:
        for e in electors:
            await e.close()
