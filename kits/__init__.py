"""The bottom layer: small kits every package stands on, importing nothing of ours.

- ``tasks``: stopping background tasks without swallowing the caller's own cancellation.
- ``durations``: Go duration strings (``500ms``, ``1m30s``, ``+5s``, ``0``), one parser for all.
- ``quantity``: the Kubernetes Quantity grammar, parsed exactly and printed canonically; each
  package keeps its own rounding.
- ``clock``: the injected ``Clock`` (``SystemClock``, ``FakeClock``) and RFC 3339 timestamps.
- ``filestamp``: what a file reloader compares to notice a file was replaced.

Nothing here may import ``kube``, ``scalers``, ``adapter``, ``keda``, ``provisioner`` or
``updraft``, nor a Kubernetes client: importing a kit must stay cheap.
"""

from kits.clock import Clock, FakeClock, SystemClock, format_rfc3339, parse_rfc3339
from kits.durations import format_duration, parse_duration
from kits.filestamp import FileStamp, file_stamp
from kits.quantity import format_quantity, parse_quantity
from kits.tasks import cancel_and_wait

__all__ = [
    "Clock",
    "FakeClock",
    "FileStamp",
    "SystemClock",
    "cancel_and_wait",
    "file_stamp",
    "format_duration",
    "format_quantity",
    "format_rfc3339",
    "parse_duration",
    "parse_quantity",
    "parse_rfc3339",
]
