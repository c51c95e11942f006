"""The application shell: the `updraft` console script wires the packages into processes.

It may import every package of ours; none of them imports it.
"""

import os
from importlib.metadata import PackageNotFoundError, version

# gRPC's C core writes its own plain-text lines (a failed TLS handshake, at INFO) to stderr,
# which would break the JSON log. It reads these once, when grpc is first imported, and this
# package runs before any command imports it. A user's own settings win (GRPC_VERBOSITY=INFO
# to debug gRPC itself).
os.environ.setdefault("GRPC_VERBOSITY", "NONE")
os.environ.setdefault("GRPC_TRACE", "")

try:
    __version__ = version("updraft")
except PackageNotFoundError:  # running from a tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
