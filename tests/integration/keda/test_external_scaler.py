"""`externalscaler.ExternalScaler` served by grpc.aio on loopback, called by a real gRPC client
the way KEDA calls it; time is a FakeClock so cron windows are exact."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import CollectorRegistry

from adapter.metricsources import MetricSourceProvider, parse
from keda import OWN_KEYS, GrpcServer, GrpcSettings, TlsFiles, TriggerSources
from keda._pb import externalscaler_pb2 as pb
from keda._pb import externalscaler_pb2_grpc as pb_grpc
from scalers import FakeClock, MetricCache, TriggerPolicy, default_registry
from tests.cluster import pki
from tests.e2e.waiting import eventually

# 00:02 in Seoul: inside the 00-05 window of the common KEDA cron example.
IN_WINDOW = datetime(2026, 3, 1, 15, 2, tzinfo=UTC)
CRON = {
    "scalerAddress": "updraft.updraft-system:9090",
    "scalerType": "cron",
    "timezone": "Asia/Seoul",
    "start": "00,15,30,45 * * * *",
    "end": "05,20,35,50 * * * *",
    "desiredReplicas": "3",
}
FAST = TriggerPolicy(polling_interval=0.05)


class Scaler:
    """A running server and a client stub on one loopback channel."""

    def __init__(self, server: GrpcServer, channel: grpc.aio.Channel, clock: FakeClock) -> None:
        self.server = server
        self.channel = channel
        self.stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
        self.clock = clock


@pytest.fixture
def metrics() -> CollectorRegistry:
    return CollectorRegistry()


@contextlib.asynccontextmanager
async def running(
    metrics: CollectorRegistry,
    sources: Callable[[MetricCache], TriggerSources] | None = None,
) -> AsyncIterator[Scaler]:
    """A plaintext server on loopback over a FakeClock cache, and a client channel to it;
    `sources` builds the MetricSources a `metricSourceRef` may name."""
    clock = FakeClock(IN_WINDOW)
    registry = default_registry()
    cache = MetricCache(registry=registry, clock=clock, metrics_registry=metrics)
    server = GrpcServer(
        cache,
        GrpcSettings(host="127.0.0.1", port=0, plaintext=True),
        known_types=registry.types(),
        policy=FAST,
        sources=None if sources is None else sources(cache),
        metrics_registry=metrics,
    )
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield Scaler(server, channel, clock)
    finally:
        await channel.close()
        await server.close()
        await cache.close()


@pytest.fixture
async def scaler(metrics: CollectorRegistry) -> AsyncIterator[Scaler]:
    async with running(metrics) as scaler:
        yield scaler


def ref(metadata: dict[str, str]) -> pb.ScaledObjectRef:
    return pb.ScaledObjectRef(name="web", namespace="default", scalerMetadata=metadata)


def upstream_calls(metrics: CollectorRegistry, kind: str) -> float:
    value = metrics.get_sample_value("updraft_scaler_upstream_calls_total", {"type": kind})
    return value or 0.0


async def test_cron_trigger_over_every_pull_rpc(scaler: Scaler) -> None:
    spec = await scaler.stub.GetMetricSpec(ref(CRON))
    [metric_spec] = spec.metricSpecs
    assert metric_spec.targetSizeFloat == 1.0
    assert metric_spec.targetSize == 1
    name = metric_spec.metricName
    assert name.startswith("cron-")

    # KEDA strips its s{i}- prefix; older versions also lowercased the name.
    for asked in (name, name.upper()):
        got = await scaler.stub.GetMetrics(
            pb.GetMetricsRequest(scaledObjectRef=ref(CRON), metricName=asked)
        )
        [value] = got.metricValues
        assert value.metricValueFloat == 3.0
        assert value.metricValue == 3
        assert value.metricName == asked
    assert (await scaler.stub.IsActive(ref(CRON))).result is True

    scaler.clock.set(datetime(2026, 3, 1, 15, 7, tzinfo=UTC))  # 00:07 Seoul: outside
    got = await scaler.stub.GetMetrics(
        pb.GetMetricsRequest(scaledObjectRef=ref(CRON), metricName=name)
    )
    assert got.metricValues[0].metricValueFloat == 0.0
    assert (await scaler.stub.IsActive(ref(CRON))).result is False


async def test_a_burst_of_keda_calls_is_one_upstream_call(
    scaler: Scaler, metrics: CollectorRegistry
) -> None:
    name = (await scaler.stub.GetMetricSpec(ref(CRON))).metricSpecs[0].metricName
    request = pb.GetMetricsRequest(scaledObjectRef=ref(CRON), metricName=name)
    calls = []
    for _ in range(50):
        calls += [
            scaler.stub.GetMetricSpec(ref(CRON)),
            scaler.stub.GetMetrics(request),
            scaler.stub.IsActive(ref(CRON)),
        ]
    await asyncio.gather(*calls)
    assert upstream_calls(metrics, "cron") == 1


async def test_metadata_in_any_order_is_one_trigger(
    scaler: Scaler, metrics: CollectorRegistry
) -> None:
    # KEDA (Go) sends map entries in no fixed order.
    backwards = dict(reversed(list(CRON.items())))
    name = (await scaler.stub.GetMetricSpec(ref(CRON))).metricSpecs[0].metricName
    assert (await scaler.stub.GetMetricSpec(ref(backwards))).metricSpecs[0].metricName == name
    for metadata in (CRON, backwards, CRON):
        request = pb.GetMetricsRequest(scaledObjectRef=ref(metadata), metricName=name)
        assert (await scaler.stub.GetMetrics(request)).metricValues[0].metricValueFloat == 3.0
    assert upstream_calls(metrics, "cron") == 1


async def test_unknown_metric_name_is_not_found(scaler: Scaler) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await scaler.stub.GetMetrics(
            pb.GetMetricsRequest(scaledObjectRef=ref(CRON), metricName="nope")
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "nope" in (err.value.details() or "")


@pytest.mark.parametrize(
    ("metadata", "named"),
    [
        ({k: v for k, v in CRON.items() if k != "start"}, "start"),
        ({**CRON, "desiredReplicas": "many"}, "desiredReplicas"),
        ({**CRON, "startTime": "9"}, "startTime"),
        ({k: v for k, v in CRON.items() if k != "scalerType"}, "scalerType"),
        ({**CRON, "metricSourceRef": "my-source"}, "metricSourceRef"),
    ],
)
async def test_bad_metadata_is_invalid_argument_naming_the_key(
    scaler: Scaler, metadata: dict[str, str], named: str
) -> None:
    # GetMetricSpec answers a placeholder (KEDA drops its errors into a log nobody reads); the
    # value calls carry the reason, which KEDA shows as a KEDAScalerFailed Event.
    spec = (await scaler.stub.GetMetricSpec(ref(metadata))).metricSpecs
    assert [(s.targetSizeFloat, s.targetSize) for s in spec] == [(1.0, 1)]
    request = pb.GetMetricsRequest(scaledObjectRef=ref(metadata), metricName=spec[0].metricName)
    for call in (scaler.stub.IsActive(ref(metadata)), scaler.stub.GetMetrics(request)):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert named in (err.value.details() or "")


async def test_two_bad_triggers_get_distinct_stable_placeholder_names(scaler: Scaler) -> None:
    bad_start = {k: v for k, v in CRON.items() if k != "start"}
    bad_end = {k: v for k, v in CRON.items() if k != "end"}
    names = [
        (await scaler.stub.GetMetricSpec(ref(m))).metricSpecs[0].metricName
        for m in (bad_start, bad_end, bad_start)
    ]
    assert names[0] != names[1]
    assert names[0] == names[2]


async def test_unknown_scaler_type_lists_the_known_ones(scaler: Scaler) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await scaler.stub.IsActive(ref({**CRON, "scalerType": "kafka"}))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = err.value.details() or ""
    assert "'kafka'" in details
    assert "cron" in details
    assert "prometheus" in details


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A listener that accepts connections and never answers: an upstream that hangs."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield int(s.getsockname()[1])


def prometheus_at(port: int) -> dict[str, str]:
    return {
        "scalerType": "prometheus",
        "serverAddress": f"http://127.0.0.1:{port}",
        "query": "sum(up)",
        "threshold": "10",
        "timeout": "30s",
    }


async def test_upstream_down_without_fallback_is_unavailable(
    scaler: Scaler, closed_port: int
) -> None:
    metadata = prometheus_at(closed_port)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await scaler.stub.IsActive(ref(metadata))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert f"127.0.0.1:{closed_port}" in (err.value.details() or "")


async def test_hanging_upstream_answers_unavailable_within_the_callers_deadline(
    scaler: Scaler, black_hole: int
) -> None:
    metadata = prometheus_at(black_hole)
    name = (await scaler.stub.GetMetricSpec(ref(metadata))).metricSpecs[0].metricName
    request = pb.GetMetricsRequest(scaledObjectRef=ref(metadata), metricName=name)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        # KEDA's HPA path allows 3 s for the whole chain; the scaler's own timeout is 30 s.
        await scaler.stub.GetMetrics(request, timeout=1.0)
    # Our answer, not the client giving up: the cache gave up at the caller's deadline.
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_stream_is_active_pushes_changes_only(scaler: Scaler) -> None:
    stream = scaler.stub.StreamIsActive(ref(CRON))
    try:
        first = await stream.read()
        assert first.result is True
        scaler.clock.set(datetime(2026, 3, 1, 15, 6, tzinfo=UTC))  # window closed
        second = await stream.read()
        assert second.result is False
        scaler.clock.set(datetime(2026, 3, 1, 15, 16, tzinfo=UTC))  # next window
        third = await stream.read()
        assert third.result is True
    finally:
        stream.cancel()


async def test_stream_metric_spec_sends_the_spec_at_once(scaler: Scaler) -> None:
    stream = scaler.stub.StreamMetricSpec(ref(CRON))
    try:
        first = await stream.read()
        unary = await scaler.stub.GetMetricSpec(ref(CRON))
        assert first == unary
    finally:
        stream.cancel()


async def test_health_and_reflection(scaler: Scaler) -> None:
    health = health_pb2_grpc.HealthStub(scaler.channel)
    for service in ("", "externalscaler.ExternalScaler"):
        answer = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(scaler.channel)
    call = reflect.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    services = set()
    async for response in call:
        services |= {s.name for s in response.list_services_response.service}
    assert "externalscaler.ExternalScaler" in services


# -- TLS -------------------------------------------------------------------------------------


def _pair(
    directory: Path, ca_name: str, leaf: str, *, client: bool = False
) -> tuple[bytes, pki.KeyPair]:
    ca = pki.new_ca(directory, ca_name)
    files = pki.issue(
        ca,
        directory,
        leaf,
        common_name=leaf,
        dns_names=("localhost",),
        ip_addresses=("127.0.0.1",),
        server=not client,
        client=client,
    )
    return ca.files.cert.read_bytes(), files


async def _spec_over(port: int, credentials: grpc.ChannelCredentials) -> pb.GetMetricSpecResponse:
    async with grpc.aio.secure_channel(f"localhost:{port}", credentials) as channel:
        stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
        response: pb.GetMetricSpecResponse = await stub.GetMetricSpec(ref(CRON), timeout=10)
        return response


async def test_mutual_tls_and_certificate_reload(
    tmp_path: Path, metrics: CollectorRegistry
) -> None:
    server_ca, serving = _pair(tmp_path, "server-ca", "server")
    client_ca, client = _pair(tmp_path, "client-ca", "keda", client=True)
    clock = FakeClock(IN_WINDOW)
    registry = default_registry()
    cache = MetricCache(registry=registry, clock=clock, metrics_registry=metrics)
    files = TlsFiles(cert=serving.cert, key=serving.key, client_ca=tmp_path / "client-ca.crt")
    server = GrpcServer(
        cache, GrpcSettings(host="127.0.0.1", port=0, tls=files), known_types=registry.types()
    )
    await server.start()
    try:
        with_cert = grpc.ssl_channel_credentials(
            root_certificates=server_ca,
            private_key=client.key.read_bytes(),
            certificate_chain=client.cert.read_bytes(),
        )
        assert (await _spec_over(server.port, with_cert)).metricSpecs[0].targetSizeFloat == 1.0

        without_cert = grpc.ssl_channel_credentials(root_certificates=server_ca)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _spec_over(server.port, without_cert)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE

        # Rotate the serving pair in place (a new CA, as after a re-issue): the next
        # handshake serves the new certificate, without a restart.
        rotated = tmp_path / "rotated"
        rotated.mkdir()
        new_ca, new_serving = _pair(rotated, "server-ca", "server")
        serving.key.write_bytes(new_serving.key.read_bytes())
        serving.cert.write_bytes(new_serving.cert.read_bytes())
        trusting_new = grpc.ssl_channel_credentials(
            root_certificates=new_ca,
            private_key=client.key.read_bytes(),
            certificate_chain=client.cert.read_bytes(),
        )
        assert (await _spec_over(server.port, trusting_new)).metricSpecs
        assert server.credentials is not None
        assert server.credentials.reloads == 1
        with pytest.raises(grpc.aio.AioRpcError):
            await _spec_over(server.port, with_cert)  # still trusting only the old CA
        assert client_ca  # the client CA file stayed as it was
    finally:
        await server.close()
        await cache.close()


# -- metricSourceRef ---------------------------------------------------------------------------


def ref_in(namespace: str, metadata: dict[str, str]) -> pb.ScaledObjectRef:
    return pb.ScaledObjectRef(name="web", namespace=namespace, scalerMetadata=metadata)


async def test_metric_source_ref_needs_metric_sources(scaler: Scaler) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await scaler.stub.IsActive(ref({"scalerAddress": "x:9090", "metricSourceRef": "busy"}))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "metricSourceRef" in (err.value.details() or "")


def quarter_hours_in_shop(cache: MetricCache) -> TriggerSources:
    provider = MetricSourceProvider(cache)
    source = {
        "apiVersion": "updraft.io/v1alpha1",
        "kind": "MetricSource",
        "metadata": {"name": "quarter-hours", "namespace": "shop"},
        "spec": {
            "trigger": {
                "type": "cron",
                "metadata": {k: v for k, v in CRON.items() if k not in OWN_KEYS},
            },
            "pollingInterval": 5,
        },
    }
    provider.upsert(parse(source, registry=default_registry()))
    # What the MetricSource controller does with an object it cannot serve.
    provider.mark_invalid("shop", "broken", "spec.trigger.metadata.start: missing, expected ...")
    return provider


@pytest.fixture
async def with_sources(metrics: CollectorRegistry) -> AsyncIterator[Scaler]:
    async with running(metrics, quarter_hours_in_shop) as scaler:
        yield scaler


async def test_metric_source_ref_serves_the_named_metric_source(with_sources: Scaler) -> None:
    by_ref = {"scalerAddress": "updraft:9090", "metricSourceRef": "quarter-hours"}
    spec = await with_sources.stub.GetMetricSpec(ref_in("shop", by_ref))
    inline = await with_sources.stub.GetMetricSpec(ref_in("shop", CRON))
    # The same trigger, so the same target; named by the MetricSource, as the metrics API does.
    assert spec.metricSpecs[0].targetSizeFloat == inline.metricSpecs[0].targetSizeFloat
    assert spec.metricSpecs[0].targetSize == inline.metricSpecs[0].targetSize
    name = spec.metricSpecs[0].metricName
    assert name == "quarter-hours"
    request = pb.GetMetricsRequest(scaledObjectRef=ref_in("shop", by_ref), metricName=name)
    got = await with_sources.stub.GetMetrics(request)
    assert got.metricValues[0].metricValueFloat == 3.0
    assert (await with_sources.stub.IsActive(ref_in("shop", by_ref))).result is True

    # Only in the ScaledObject's own namespace.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await with_sources.stub.IsActive(ref_in("other", by_ref))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "other/quarter-hours" in (err.value.details() or "")


async def test_a_changed_metric_source_is_served_as_it_is_now(metrics: CollectorRegistry) -> None:
    providers: list[MetricSourceProvider] = []

    def sources(cache: MetricCache) -> TriggerSources:
        provider = MetricSourceProvider(cache)
        providers.append(provider)
        return provider

    def source(desired: str) -> dict[str, object]:
        metadata = {k: v for k, v in CRON.items() if k not in OWN_KEYS}
        return {
            "apiVersion": "updraft.io/v1alpha1",
            "kind": "MetricSource",
            "metadata": {"name": "crowd", "namespace": "shop"},
            "spec": {
                "trigger": {"type": "cron", "metadata": {**metadata, "desiredReplicas": desired}}
            },
        }

    async with running(metrics, sources) as scaler:
        [provider] = providers
        by_ref = ref_in("shop", {"scalerAddress": "updraft:9090", "metricSourceRef": "crowd"})
        request = pb.GetMetricsRequest(scaledObjectRef=by_ref, metricName="crowd")
        provider.upsert(parse(source("3"), registry=default_registry()))
        assert (await scaler.stub.GetMetrics(request)).metricValues[0].metricValueFloat == 3.0
        # The ScaledObject is unchanged, its MetricSource is not: the ref resolves anew.
        provider.upsert(parse(source("5"), registry=default_registry()))
        assert (await scaler.stub.GetMetrics(request)).metricValues[0].metricValueFloat == 5.0


async def test_metric_source_ref_matches_names_as_the_metrics_api_does(
    with_sources: Scaler,
) -> None:
    by_ref = {"scalerAddress": "updraft:9090", "metricSourceRef": "Quarter-Hours"}
    spec = await with_sources.stub.GetMetricSpec(ref_in("shop", by_ref))
    # Case-insensitive, like the HTTP door; the name KEDA gets is the source's own spelling.
    assert spec.metricSpecs[0].metricName == "quarter-hours"
    request = pb.GetMetricsRequest(
        scaledObjectRef=ref_in("shop", by_ref), metricName="QUARTER-HOURS"
    )
    got = await with_sources.stub.GetMetrics(request)
    assert got.metricValues[0].metricValueFloat == 3.0


async def test_metric_source_ref_to_an_invalid_source_says_why(with_sources: Scaler) -> None:
    by_ref = {"scalerAddress": "updraft:9090", "metricSourceRef": "broken"}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await with_sources.stub.GetMetricSpec(ref_in("shop", by_ref))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = err.value.details() or ""
    assert "MetricSource shop/broken is invalid" in details
    assert "spec.trigger.metadata.start" in details


# -- the door's own series -----------------------------------------------------------------


def handled(metrics: CollectorRegistry, method: str, code: str) -> float:
    labels = {"grpc_service": "externalscaler.ExternalScaler", "grpc_method": method}
    value = metrics.get_sample_value(
        "updraft_grpc_server_handled_total", {**labels, "grpc_code": code}
    )
    return value or 0.0


async def test_calls_are_counted_by_method_and_code(
    scaler: Scaler, metrics: CollectorRegistry
) -> None:
    await scaler.stub.IsActive(ref(CRON))
    await scaler.stub.IsActive(ref(CRON))
    with pytest.raises(grpc.aio.AioRpcError):
        await scaler.stub.IsActive(ref({**CRON, "scalerType": "kafka"}))
    with pytest.raises(grpc.aio.AioRpcError):
        await scaler.stub.GetMetrics(
            pb.GetMetricsRequest(scaledObjectRef=ref(CRON), metricName="x")
        )
    assert handled(metrics, "IsActive", "OK") == 2
    assert handled(metrics, "IsActive", "INVALID_ARGUMENT") == 1
    assert handled(metrics, "GetMetrics", "NOT_FOUND") == 1
    # A stream counts once it ends, with the code it ends with.
    stream = scaler.stub.StreamIsActive(ref(CRON))
    assert (await stream.read()).result is True
    stream.cancel()

    async def counted() -> bool | None:
        return handled(metrics, "StreamIsActive", "CANCELLED") >= 1 or None

    await eventually(counted, within=10, what="the cancelled stream to be counted")


async def test_many_scaled_objects_on_one_trigger_are_one_upstream_call_by_trigger(
    scaler: Scaler, metrics: CollectorRegistry
) -> None:
    for i in range(20):
        so = pb.ScaledObjectRef(name=f"web-{i}", namespace="default", scalerMetadata=CRON)
        await scaler.stub.IsActive(so)
    samples = {
        (s.name, s.labels["trigger"]): s.value
        for family in metrics.collect()
        for s in family.samples
        if s.name.startswith("updraft_scaler_trigger_")
    }
    triggers = {trigger for _, trigger in samples}
    assert len(triggers) == 1
    (trigger,) = triggers
    assert trigger.startswith("cron-asia-seoul-")
    assert samples[("updraft_scaler_trigger_asks_total", trigger)] == 20
    assert samples[("updraft_scaler_trigger_upstream_calls_total", trigger)] == 1
