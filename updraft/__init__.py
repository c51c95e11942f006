"""The application shell: the `updraft` console script wires the packages into processes.

It may import every package of ours; none of them imports it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("updraft")
except PackageNotFoundError:  # running from a tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
