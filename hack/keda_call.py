"""Call Updraft's KEDA external scaler the way KEDA does, for trying it out by hand.

    .venv/bin/python hack/keda_call.py [--address 127.0.0.1:9090] RPC key=value ...

RPC is IsActive, GetMetricSpec or GetMetrics (which first asks GetMetricSpec for the name);
the key=value pairs are the trigger's metadata (scalerType=cron timezone=... ...).
Plaintext only: it is for `updraft serve --grpc-plaintext` on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import grpc
from google.protobuf import json_format

from scalers._pb import externalscaler_pb2 as pb
from scalers._pb import externalscaler_pb2_grpc as pb_grpc


async def call(address: str, rpc: str, metadata: dict[str, str]) -> str:
    ref = pb.ScaledObjectRef(name="try", namespace="default", scalerMetadata=metadata)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
        if rpc == "IsActive":
            answer = await stub.IsActive(ref, timeout=5)
        elif rpc == "GetMetricSpec":
            answer = await stub.GetMetricSpec(ref, timeout=5)
        else:
            spec = await stub.GetMetricSpec(ref, timeout=5)
            name = spec.metricSpecs[0].metricName
            request = pb.GetMetricsRequest(scaledObjectRef=ref, metricName=name)
            answer = await stub.GetMetrics(request, timeout=5)
    return json_format.MessageToJson(answer, always_print_fields_with_no_presence=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", default="127.0.0.1:9090")
    parser.add_argument("rpc", choices=["IsActive", "GetMetricSpec", "GetMetrics"])
    parser.add_argument("metadata", nargs="*", metavar="key=value")
    args = parser.parse_args()
    metadata = dict(kv.split("=", 1) for kv in args.metadata)
    try:
        print(asyncio.run(call(args.address, args.rpc, metadata)))
    except grpc.aio.AioRpcError as e:
        print(f"{e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
