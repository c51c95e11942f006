"""`updraft serve` as a real process: flags, the gRPC front door, /metrics, JSON logs, and a
clean exit on SIGTERM."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import orjson
import pytest

from scalers._pb import externalscaler_pb2 as pb
from scalers._pb import externalscaler_pb2_grpc as pb_grpc
from tests.servers.process import ServerProcess, http_ok

UPDRAFT = str(Path(sys.executable).parent / "updraft")
CRON = {
    "scalerType": "cron",
    "timezone": "Europe/Berlin",
    "start": "0 8 * * *",
    "end": "0 18 * * *",
    "desiredReplicas": "4",
}


@pytest.fixture
def updraft(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(
        name="updraft",
        binary=UPDRAFT,
        ports=2,
        directory=tmp_path,
        args=lambda ports, _: [
            "serve",
            "--grpc-host=127.0.0.1",
            f"--grpc-port={ports[0]}",
            "--grpc-plaintext",
            "--metrics-host=127.0.0.1",
            f"--metrics-port={ports[1]}",
        ],
    )
    server.start()
    server.wait_ready(lambda: http_ok(f"http://127.0.0.1:{server.ports[1]}/readyz"), what="ready")
    yield server
    server.stop()


async def test_serve_answers_keda_and_exports_metrics(updraft: ServerProcess) -> None:
    grpc_port, metrics_port = updraft.ports
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

    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:  # noqa: ASYNC210 - a one-off read in a test
        text = r.read().decode()
    assert 'updraft_scaler_upstream_calls_total{type="cron"} 1.0' in text

    assert updraft.stop() == 0
    lines = [ln for ln in updraft.log_path.read_text().splitlines() if ln.startswith("{")]
    records = [orjson.loads(ln) for ln in lines]
    assert any("gRPC external scaler serving" in r["message"] for r in records)
    assert records[-1]["message"] == "stopping"


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
    ],
)
def test_bad_flags_exit_2_naming_the_flag(flags: list[str], named: str) -> None:
    done = subprocess.run(
        [UPDRAFT, "serve", "--metrics-port=0", *flags], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert named in done.stderr
