"""`updraft serve` as a real process in standalone mode: the metrics API over HTTPS and the
gRPC front door sharing one cache, /metrics, JSON logs, flags, and a clean exit on SIGTERM."""

from __future__ import annotations

import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import grpc
import orjson
import pytest

from keda._pb import externalscaler_pb2 as pb
from keda._pb import externalscaler_pb2_grpc as pb_grpc
from tests.cluster import pki
from tests.servers.process import ServerProcess
from tests.servers.updraft import UPDRAFT, grpc_serve, standalone_serve

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "standalone.yaml"
CRON = {
    "scalerType": "cron",
    "timezone": "Europe/Berlin",
    "start": "0 8 * * *",
    "end": "0 18 * * *",
    "desiredReplicas": "4",
}


@pytest.fixture
def updraft(tmp_path: Path) -> Iterator[ServerProcess]:
    server = standalone_serve(DEMO, tmp_path)
    yield server
    server.stop()


async def test_serve_answers_keda_and_exports_metrics(updraft: ServerProcess) -> None:
    grpc_port, metrics_port, _ = updraft.ports
    ref = pb.ScaledObjectRef(name="web", namespace="default", scalerMetadata=CRON)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
        spec = await stub.GetMetricSpec(ref, timeout=5)
        assert spec.metricSpecs[0].targetSizeFloat == 1.0
        active = (await stub.IsActive(ref, timeout=5)).result
        got = await stub.GetMetrics(
            pb.GetMetricsRequest(scaledObjectRef=ref, metricName=spec.metricSpecs[0].metricName),
            timeout=5,
        )
        assert got.metricValues[0].metricValueFloat == (4.0 if active else 0.0)
        # A KEDA trigger may name a MetricSource of the standalone file instead of inlining it.
        by_ref = pb.ScaledObjectRef(
            name="web", namespace="default", scalerMetadata={"metricSourceRef": "business-hours"}
        )
        named = await stub.GetMetricSpec(by_ref, timeout=5)
        # Named by the MetricSource's name, as the metrics API names it.
        assert named.metricSpecs[0].metricName == "business-hours"

    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:  # noqa: ASYNC210 - a one-off read in a test
        text = r.read().decode()
    assert 'updraft_scaler_upstream_calls_total{type="cron"} 1.0' in text

    assert updraft.stop() == 0
    lines = [ln for ln in updraft.log_path.read_text().splitlines() if ln.startswith("{")]
    records = [orjson.loads(ln) for ln in lines]
    assert any("gRPC external scaler serving" in r["message"] for r in records)
    assert records[-1]["message"] == "stopping"


def test_serve_exports_only_its_own_metrics(updraft: ServerProcess) -> None:
    url = f"http://127.0.0.1:{updraft.ports[1]}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        lines = [ln for ln in r.read().decode().splitlines() if not ln.startswith("#")]
    # The console script imports the provisioner's code, but this process runs no provisioner.
    assert [ln for ln in lines if ln.startswith("updraft_provisioner_")] == []
    assert any(ln.startswith("updraft_scaler_cache_keys ") for ln in lines)
    assert any(ln.startswith("process_") for ln in lines)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        ([], "--grpc-tls-cert"),
        (["--grpc-plaintext", "--grpc-tls-cert=/etc/hostname"], "--grpc-plaintext"),
        (
            ["--grpc-tls-cert=/nonexistent.pem", "--grpc-tls-key=/nonexistent.key"],
            "/nonexistent.pem",
        ),
        (["--grpc-port=70000", "--grpc-plaintext"], "70000"),
        (["--grpc-port=0", "--insecure-no-auth"], "--insecure-no-auth"),
        (["--grpc-port=0", "--tls-cert-file=/etc/hostname"], "--tls-private-key-file"),
        (["--grpc-port=0", f"--standalone-config={REPO / 'pyproject.toml'}"], "not valid YAML"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(flags: list[str], named: str) -> None:
    done = subprocess.run(
        [UPDRAFT, "serve", "--metrics-port=0", "--cert-dir=/tmp/updraft-test-serving", *flags],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert named in done.stderr


async def test_standalone_metrics_api_serves_the_demo_file(updraft: ServerProcess) -> None:
    port = updraft.ports[2]
    ca = ssl.create_default_context(cafile=str(updraft.directory / "serving" / "ca.crt"))
    base = f"https://localhost:{port}/apis/external.metrics.k8s.io/v1beta1"
    async with aiohttp.ClientSession() as http:
        async with http.get(base, ssl=ca) as r:
            assert r.status == 200
            names = {res["name"] for res in (await r.json())["resources"]}
        assert {"quarter-hours", "business-hours", "http-requests"} <= names
        # The HPA lowercases names; the value is the cron window's, 0 or desiredReplicas.
        async with http.get(f"{base}/namespaces/default/QUARTER-HOURS", ssl=ca) as r:
            assert r.status == 200
            body = await r.json()
        assert body["kind"] == "ExternalMetricValueList"
        [item] = body["items"]
        assert item["metricName"] == "quarter-hours"
        assert item["value"] in ("0", "1")
        async with http.get(f"{base}/namespaces/other/quarter-hours", ssl=ca) as r:
            assert r.status == 404
            assert (await r.json())["reason"] == "NotFound"
        # Nothing listens on the demo's Prometheus address: 503 until the fallback (3 failures).
        async with http.get(f"{base}/namespaces/default/http-requests", ssl=ca) as r:
            assert r.status == 503
            assert (await r.json())["reason"] == "ServiceUnavailable"


def test_a_bad_standalone_file_stops_startup_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "sources.yaml"
    bad.write_text(DEMO.read_text().replace('desiredReplicas: "5"', 'desiredReplicas: "five"'))
    done = subprocess.run(
        [
            UPDRAFT,
            "serve",
            "--metrics-port=0",
            "--grpc-port=0",
            f"--cert-dir={tmp_path}",
            f"--standalone-config={bad}",
            "--insecure-no-auth",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "document 2 (business-hours)" in done.stderr
    assert "spec.trigger.metadata.desiredReplicas" in done.stderr


def test_an_empty_standalone_file_stops_startup_naming_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "sources.yaml"
    empty.write_text("# MetricSources go here\n")
    done = subprocess.run(
        [
            UPDRAFT,
            "serve",
            "--metrics-port=0",
            "--grpc-port=0",
            f"--cert-dir={tmp_path}",
            f"--standalone-config={empty}",
            "--insecure-no-auth",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"updraft serve: {empty}: holds no MetricSource documents; expected at least one"
    ]


async def test_a_long_query_gets_a_status_and_one_log_line(updraft: ServerProcess) -> None:
    port = updraft.ports[2]
    ca = ssl.create_default_context(cafile=str(updraft.directory / "serving" / "ca.crt"))
    url = f"https://localhost:{port}/apis/external.metrics.k8s.io/v1beta1/namespaces/default"
    async with aiohttp.ClientSession() as http:
        # 10,000 characters of selector: ours to answer, as a Status naming the problem.
        async with http.get(f"{url}/quarter-hours?labelSelector={'a' * 10_000}=", ssl=ca) as r:
            assert r.status == 400
            body = await r.json()
        assert (body["kind"], body["reason"]) == ("Status", "BadRequest")
        assert "label selector" in body["message"]
        # Past any sensible limit: refused before routing, logged in one line per request.
        for _ in range(3):
            async with http.get(f"{url}/quarter-hours?x={'a' * 100_000}", ssl=ca) as r:
                assert r.status == 400
    assert updraft.stop() == 0
    lines = updraft.log_path.read_text().splitlines()
    assert "Traceback" not in "\n".join(lines)
    refused = [orjson.loads(ln) for ln in lines if "Error handling request" in ln]
    assert len(refused) == 3
    assert all(r["level"] == "warning" for r in refused)


def test_the_log_is_only_json_lines_even_when_grpc_core_complains(tmp_path: Path) -> None:
    ca = pki.new_ca(tmp_path, "ca")
    pair = pki.issue(
        ca, tmp_path, "grpc", common_name="localhost", dns_names=("localhost",), server=True
    )
    server = grpc_serve(tmp_path, tls=(pair.cert, pair.key))
    try:
        # Plaintext HTTP/2 to the TLS port: gRPC's C core reports the failed handshake itself.
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", server.ports[0]), timeout=5) as s:
                s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes(64))
                s.recv(1024)
    finally:
        assert server.stop() == 0
    # Past the fixture's own "--- start: <argv>" header, everything is the process's output.
    lines = [ln for ln in server.log_path.read_text().splitlines() if ln.strip()][1:]
    assert lines
    for line in lines:
        assert isinstance(orjson.loads(line), dict), line


def test_the_self_signed_certificate_is_announced_once_without_skipping_verification(
    updraft: ServerProcess,
) -> None:
    assert updraft.stop() == 0
    said = [ln for ln in updraft.log_path.read_text().splitlines() if "self-signed" in ln]
    assert len(said) == 1, said
    record = orjson.loads(said[0])
    assert record["level"] == "warning"
    assert "caBundle" in record["message"]
    assert "skip" not in record["message"].lower()


def test_serve_counts_metrics_api_requests_by_metric(updraft: ServerProcess) -> None:
    """Each answer is counted by group, metric and code; a 404's name is the caller's, so it
    is counted without one."""
    _, metrics_port, api_port = updraft.ports
    tls = ssl.create_default_context(cafile=str(updraft.directory / "serving" / "ca.crt"))
    base = f"https://localhost:{api_port}/apis/external.metrics.k8s.io/v1beta1/namespaces/default"
    with urllib.request.urlopen(f"{base}/business-hours", context=tls, timeout=5) as r:
        assert r.status == 200
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{base}/no-such-metric", context=tls, timeout=5)
    assert missing.value.code == 404
    missing.value.close()
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    group = 'group="external.metrics.k8s.io"'
    assert f'updraft_adapter_requests_total{{code="200",{group},metric="business-hours"}} 1.0' in (
        text
    )
    assert f'updraft_adapter_requests_total{{code="404",{group},metric=""}} 1.0' in text
    assert "no-such-metric" not in text
    assert f"updraft_adapter_request_duration_seconds_count{{{group}}} 2.0" in text
