"""The real control plane for e2e tests: started once per session (or reused when
`make cluster-up` already runs one), an async kubernetes client, a namespace per test, and the
components' log tails attached to every failed test's report.

Under pytest-xdist (`make test` runs the tiers on several workers) each worker has a control
plane of its own, in `.cache/cluster-<worker>`: the tests install cluster-wide objects (CRDs,
APIServices, KEDA) that two sessions must not share."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Generator, Iterator

import pytest
from kubernetes_asyncio import client, config

from tests.cluster.controlplane import DEFAULT_STATE_DIR, ControlPlane, running
from tests.e2e.manifests import body

_PLANE = pytest.StashKey[ControlPlane]()


@pytest.fixture(scope="session")
def control_plane(request: pytest.FixtureRequest) -> Iterator[ControlPlane]:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    state = (
        DEFAULT_STATE_DIR if worker is None else DEFAULT_STATE_DIR.with_name(f"cluster-{worker}")
    )
    with running(state) as cp:
        request.config.stash[_PLANE] = cp
        yield cp


@pytest.fixture(scope="session")
async def kube(control_plane: ControlPlane) -> AsyncIterator[client.ApiClient]:
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(control_plane.kubeconfig), client_configuration=configuration
    )
    async with client.ApiClient(configuration=configuration) as api:
        yield api


@pytest.fixture
async def namespace(kube: client.ApiClient) -> AsyncIterator[str]:
    """A fresh namespace, deleted after the test."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(kube)
    await core.create_namespace(body(client.V1Namespace, {"metadata": {"name": name}}))
    yield name
    await core.delete_namespace(name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    cp = item.config.stash.get(_PLANE, None)
    if report.failed and cp is not None:
        report.sections.append(("control plane logs", cp.log_tails()))
    return report
