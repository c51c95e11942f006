"""manifests/examples/keda-scaledobject.yaml works as shipped: a gRPC client set up exactly as
KEDA sets itself up from the example (scalerAddress, enableTLS, the TriggerAuthentication's
caCert) reaches a real `updraft serve` that serves the certificate the manifests' Deployment
serves, and gets the trigger's metric spec."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from adapter import ensure_self_signed
from keda._pb import externalscaler_pb2 as pb
from keda._pb import externalscaler_pb2_grpc as pb_grpc
from tests.servers.process import ServerProcess
from tests.servers.updraft import grpc_serve

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "manifests" / "examples" / "keda-scaledobject.yaml"
SERVICE = REPO / "manifests" / "base" / "service.yaml"
DEPLOYMENT = REPO / "manifests" / "base" / "deployment.yaml"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[ServerProcess]:
    """`updraft serve` with the Deployment's gRPC flags, its certificate issued for the base
    Service the way updraft issues its own (ensure_self_signed for <service>.<namespace>)."""
    [service] = _docs(SERVICE)
    pair = ensure_self_signed(
        tmp_path / "serving-cert",
        service=service["metadata"]["name"],
        namespace=service["metadata"]["namespace"],
    )
    [deployment] = _docs(DEPLOYMENT)
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert "--grpc-tls-cert=/var/run/serving-cert/tls.crt" in container["args"]
    server = grpc_serve(tmp_path, tls=(pair.cert_file, pair.key_file))
    yield server
    server.stop()


async def test_a_client_configured_from_the_example_gets_the_metric_spec(
    deployed: ServerProcess,
) -> None:
    docs = _docs(EXAMPLE)
    [scaled] = [d for d in docs if d["kind"] == "ScaledObject"]
    [trigger] = scaled["spec"]["triggers"]
    metadata: dict[str, str] = trigger["metadata"]
    # KEDA turns TLS on for enableTLS (or a caCert/client cert from the TriggerAuthentication).
    assert metadata["enableTLS"] == "true"
    [auth] = [
        d
        for d in docs
        if d["kind"] == "TriggerAuthentication"
        and d["metadata"]["name"] == trigger["authenticationRef"]["name"]
    ]
    assert auth["metadata"]["namespace"] == scaled["metadata"]["namespace"]
    [ca_ref] = [r for r in auth["spec"]["secretTargetRef"] if r["parameter"] == "caCert"]
    assert ca_ref["key"] == "ca.crt"
    # That Secret holds the CA of the serving certificate: the generated ca.crt.
    ca_pem = (deployed.directory / "serving-cert" / ca_ref["key"]).read_bytes()

    host, _, port = metadata["scalerAddress"].rpartition(":")
    [service] = _docs(SERVICE)
    assert int(port) in {p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc"}
    # The Service name resolves to us: dial loopback, verify and send SNI for `host`.
    credentials = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    async with grpc.aio.secure_channel(
        f"127.0.0.1:{deployed.port}",
        credentials,
        options=[("grpc.ssl_target_name_override", host), ("grpc.default_authority", host)],
    ) as channel:
        stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
        ref = pb.ScaledObjectRef(
            name=scaled["metadata"]["name"],
            namespace=scaled["metadata"]["namespace"],
            scalerMetadata=metadata,  # KEDA sends the whole trigger metadata
        )
        spec = await stub.GetMetricSpec(ref, timeout=10)
    [metric] = spec.metricSpecs
    assert metric.targetSizeFloat == float(metadata["threshold"])
