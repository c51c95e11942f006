"""The KEDA front door: a grpc.aio server speaking KEDA's `externalscaler` protocol.

A ScaledObject trigger of type `external` / `external-push` names an Updraft scaler in
`scalerType` and passes the rest of its metadata through; every RPC is answered through the
same `MetricCache` the metrics adapter uses.
"""

from keda.server import GrpcServer, GrpcSettings
from keda.service import (
    OWN_KEYS,
    ExternalScalerService,
    TriggerSources,
    spec_from_metadata,
)
from keda.tls import ReloadingServerCredentials, TlsFiles

__all__ = [
    "OWN_KEYS",
    "ExternalScalerService",
    "GrpcServer",
    "GrpcSettings",
    "ReloadingServerCredentials",
    "TlsFiles",
    "TriggerSources",
    "spec_from_metadata",
]
