"""Benchmark: one external metric GET through the adapter vs a bare aiohttp handler.

Run as `.venv/bin/python -m bench.adapter_get`; prints one JSON object. Both servers run in one
child process over HTTPS on loopback with the same certificate; the client presents a
front-proxy certificate and identity headers, so the adapter's number includes
authentication, routing, name lookup, selector parsing and Quantity formatting. The bare
handler returns a prebuilt body of the same size. Rounds alternate between the two so drift
from other load on the machine hits both alike. Also timed: the external discovery document
with 5,000 metrics. Request counts are fixed; nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import signal
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from adapter import (
    AdapterServer,
    AllowAll,
    ExternalSample,
    FrontProxyAuthenticator,
    MetricNotFoundError,
    MetricRef,
    NoCustomMetrics,
    RequestHeaderSettings,
    Selector,
    ServingCertificate,
    ServingSettings,
    create_app,
    ensure_self_signed,
)
from adapter.external import value_list

ROUNDS = 4
REQUESTS_PER_ROUND = 1500
CONCURRENCY = 16
WARMUP = 300
DISCOVERY_METRICS = 5000
DISCOVERY_REQUESTS = 30
NAMESPACE = "bench"
METRIC = "queueLength"
AT = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)


class MemoryMetrics:
    """The metric under test plus `extra` others that only show up in discovery."""

    def __init__(self, extra: int) -> None:
        self._refs = [MetricRef(METRIC, NAMESPACE)] + [
            MetricRef(f"metric-{i:05d}", NAMESPACE) for i in range(extra)
        ]
        self._samples = [
            ExternalSample(METRIC, 1500.5, AT, {"queue": "orders"}),
            ExternalSample(METRIC, 0.25, AT, {"queue": "mail"}),
        ]

    async def list_metrics(self) -> Sequence[MetricRef]:
        return self._refs

    async def get(
        self, *, namespace: str, name: str, selector: Selector
    ) -> Sequence[ExternalSample]:
        if name != METRIC:
            raise MetricNotFoundError(name, group="external.metrics.k8s.io")
        return [s for s in self._samples if selector.matches(s.labels)]


def _front_proxy_pki(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a `front-proxy-client` certificate it signed: (ca, cert, key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench-front-proxy-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "front-proxy-client")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "fp-ca.crt", directory / "fp.crt", directory / "fp.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


async def _serve(workdir: Path) -> None:
    """Child process: both servers, ports on stdout, until SIGTERM."""
    serving = ensure_self_signed(workdir / "serving", service="bench", namespace="bench")
    fp_ca = (workdir / "fp-ca.crt").read_bytes()

    def certificate() -> ServingCertificate:
        return ServingCertificate(
            ServingSettings(serving.cert_file, serving.key_file, client_ca_pems=(fp_ca,))
        )

    allow = AllowAll()
    app = create_app(
        external=MemoryMetrics(DISCOVERY_METRICS),
        custom=NoCustomMetrics(),
        authenticator=FrontProxyAuthenticator(
            RequestHeaderSettings(client_ca_pem=fp_ca, allowed_names=("front-proxy-client",))
        ),
        authorizer=allow,
        version="0.1.0",
    )
    body = orjson.dumps(value_list(MemoryMetrics(0)._samples[:1]))

    async def bare_handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    bare_app = web.Application()
    bare_app.router.add_get("/{tail:.*}", bare_handler)
    adapter_server = AdapterServer(app, certificate=certificate(), host="127.0.0.1", port=0)
    bare_server = AdapterServer(bare_app, certificate=certificate(), host="127.0.0.1", port=0)
    await adapter_server.start()
    await bare_server.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print(json.dumps({"adapter": adapter_server.port, "bare": bare_server.port}), flush=True)
    await stop.wait()
    await adapter_server.close()
    await bare_server.close()


async def _timed(session: aiohttp.ClientSession, url: str, count: int) -> tuple[float, list[float]]:
    """`count` GETs with CONCURRENCY in flight: (wall seconds, per-request seconds)."""
    latencies: list[float] = []
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{url}: HTTP {response.status}")
            latencies.append(time.perf_counter() - start)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - began, latencies


def _summary(wall: float, latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "throughput_rps": round(len(ordered) / wall, 1),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 3),
    }


async def _client(workdir: Path, ports: dict[str, int]) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=str(workdir / "serving" / "ca.crt"))
    context.load_cert_chain(workdir / "fp.crt", workdir / "fp.key")
    headers = {"X-Remote-User": "system:serviceaccount:kube-system:horizontal-pod-autoscaler"}
    path = f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/queuelength"
    query = "?labelSelector=queue%20in%20(orders)"
    urls = {name: f"https://127.0.0.1:{port}{path}{query}" for name, port in ports.items()}
    totals: dict[str, tuple[float, list[float]]] = {name: (0.0, []) for name in urls}
    connector = aiohttp.TCPConnector(ssl=context, limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        sizes = {}
        for name, url in urls.items():
            async with session.get(url) as response:
                sizes[name] = len(await response.read())
            await _timed(session, url, WARMUP)
        for _ in range(ROUNDS):
            for name, url in urls.items():
                wall, latencies = await _timed(session, url, REQUESTS_PER_ROUND)
                total_wall, total_latencies = totals[name]
                totals[name] = (total_wall + wall, total_latencies + latencies)

        discovery_url = f"https://127.0.0.1:{ports['adapter']}/apis/external.metrics.k8s.io/v1beta1"
        discovery: list[float] = []
        document: dict[str, Any] = {}
        for _ in range(DISCOVERY_REQUESTS):
            start = time.perf_counter()
            async with session.get(discovery_url) as response:
                raw = await response.read()
            discovery.append(time.perf_counter() - start)
            document = json.loads(raw)
    adapter = _summary(*totals["adapter"])
    bare = _summary(*totals["bare"])
    return {
        "benchmark": "adapter_get",
        "concurrency": CONCURRENCY,
        "body_bytes": sizes,
        "adapter": adapter,
        "bare_aiohttp": bare,
        "throughput_ratio": round(adapter["throughput_rps"] / bare["throughput_rps"], 3),
        "goal_ratio": 0.7,
        "discovery": {
            "metrics": len(document.get("resources", [])),
            "requests": len(discovery),
            "median_ms": round(statistics.median(discovery) * 1000, 2),
            "max_ms": round(max(discovery) * 1000, 2),
            "body_bytes": len(raw),
        },
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }


async def _main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="updraft-bench-") as scratch:
        workdir = Path(scratch)
        _front_proxy_pki(workdir)
        # Generate the serving pair here so the child only reads it.
        ensure_self_signed(workdir / "serving", service="bench", namespace="bench")
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.adapter_get",
            "--serve",
            str(workdir),
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert child.stdout is not None
            ports = json.loads(await asyncio.wait_for(child.stdout.readline(), timeout=30))
            return await _client(workdir, ports)
        finally:
            child.terminate()
            await child.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(_serve(args.serve))
        return
    print(json.dumps(asyncio.run(_main())))


if __name__ == "__main__":
    main()
