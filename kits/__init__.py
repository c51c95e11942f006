"""The bottom layer: small kits every package stands on, importing nothing of ours.

- ``tasks``: stopping background tasks without swallowing the caller's own cancellation.
- ``durations``: Go duration strings (``500ms``, ``1m30s``), one parser for every package.

Nothing here may import ``kube``, ``scalers``, ``adapter``, ``keda``, ``provisioner`` or
``updraft``, nor a Kubernetes client: importing a kit must stay cheap.
"""

from kits.durations import parse_duration
from kits.tasks import cancel_and_wait

__all__ = ["cancel_and_wait", "parse_duration"]
